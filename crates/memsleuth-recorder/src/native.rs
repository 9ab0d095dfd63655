//! Native frames as the recorder writes them: each return address once, as a `NativeFrame`
//! record naming the loaded object it lies in (a `Mapping` record, written the first time an
//! address falls in it) and its file address, so a reader can name it from the file later.

use memsleuth_format::{Mapping, NativeFrame, Record};
use rustc_hash::FxHashMap as HashMap;

struct Object {
    start: u64,
    end: u64,
    bias: u64,
    /// Its `Mapping` id once written, else its record to write.
    mapping: u32,
    record: Option<Mapping>,
}

#[derive(Default)]
pub(crate) struct NativeNames {
    ids: HashMap<u64, u32>,
    /// Sorted by start.
    objects: Vec<Object>,
    next_mapping: u32,
}

impl NativeNames {
    /// The frame id of return address `pc`, taking a new one from `next_frame` (and pushing the
    /// records it needs onto `out`) the first time.
    pub(crate) fn frame(&mut self, pc: u64, next_frame: &mut u32, out: &mut Vec<Record>) -> u32 {
        if let Some(&id) = self.ids.get(&pc) {
            return id;
        }
        let id = *next_frame;
        *next_frame += 1;
        // an address in no known object: a library loaded since the list was read. Each address
        // is looked up once, so even addresses in no object at all (JIT code) cost one reading
        let object = self.object_of(pc).or_else(|| {
            self.refresh();
            self.object_of(pc)
        });
        let (mapping, address) = match object {
            Some(i) => {
                let o = &mut self.objects[i];
                if let Some(record) = o.record.take() {
                    out.push(Record::Mapping(record));
                }
                (o.mapping, pc.wrapping_sub(o.bias))
            }
            None => (0, pc),
        };
        out.push(Record::NativeFrame(NativeFrame {
            id,
            mapping,
            address,
        }));
        self.ids.insert(pc, id);
        id
    }

    fn object_of(&self, pc: u64) -> Option<usize> {
        let i = self.objects.partition_point(|o| o.start <= pc);
        let o = self.objects.get(i.checked_sub(1)?)?;
        (pc < o.end).then_some(i - 1)
    }

    /// Reads the loaded objects again, keeping the ids of those already known.
    fn refresh(&mut self) {
        for lo in memsleuth_platform::loaded_objects() {
            let (start, end) = lo.range();
            if start >= end
                || self
                    .objects
                    .iter()
                    .any(|o| o.start == start && o.end == end)
            {
                continue;
            }
            self.next_mapping += 1;
            let build_id = lo.build_id.iter().map(|b| format!("{b:02x}")).collect();
            self.objects.push(Object {
                start,
                end,
                bias: lo.bias,
                mapping: self.next_mapping,
                record: Some(Mapping {
                    id: self.next_mapping,
                    path: lo.path,
                    build_id,
                    start,
                    end,
                    bias: lo.bias,
                    unwind: lo.eh_frame_hdr.is_some(),
                }),
            });
        }
        self.objects.sort_by_key(|o| o.start);
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[test]
    fn an_address_of_this_binary_is_named_by_its_object_once() {
        let mut names = NativeNames::default();
        let mut next = 10;
        let mut out = Vec::new();
        let pc = NativeNames::frame as *const () as usize as u64 + 4;
        let id = names.frame(pc, &mut next, &mut out);
        assert_eq!((id, next), (10, 11));
        let [Record::Mapping(m), Record::NativeFrame(f)] = &out[..] else {
            panic!("{out:?}")
        };
        let (m, f) = (m.clone(), *f);
        let exe = std::fs::read_link("/proc/self/exe").unwrap();
        assert_eq!(m.path, exe.display().to_string());
        assert_eq!((f.id, f.mapping, f.address), (10, m.id, pc - m.bias));
        // the same address again: the same id, no record
        out.clear();
        assert_eq!(names.frame(pc, &mut next, &mut out), 10);
        assert!(out.is_empty());
        // another address of the same object: a frame, no second mapping
        let other = names.frame(pc + 1, &mut next, &mut out);
        assert_eq!(other, 11);
        assert!(matches!(&out[..], [Record::NativeFrame(f)] if f.mapping == m.id));
        // an address in no object
        out.clear();
        let nowhere = names.frame(8, &mut next, &mut out);
        assert!(matches!(&out[..], [Record::NativeFrame(f)] if f.id == nowhere && f.mapping == 0));
    }
}
