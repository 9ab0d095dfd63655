//! A stack [`Profile`] as a gzip-compressed pprof profile (`perftools.profiles.Profile`, the
//! `profile.proto` that `go tool pprof`, Grafana Pyroscope, Speedscope and many other tools
//! read).
//!
//! The protobuf is written by hand: the six messages involved (Profile, ValueType, Sample,
//! Location, Line, Function, and Mapping for native frames' objects) use only varints, packed varints and length-delimited fields, which
//! is less code than wiring up a protobuf code generator and keeps the build free of one.
//!
//! Like Go's heap profiles, the sample types are `inuse_objects/count` then `inuse_space/bytes`,
//! and the default sample type is `inuse_space`. Each distinct location is one pprof Location
//! with one Line; each distinct (function, file) is one Function. Sample locations are leaf
//! first, as pprof expects (the opposite of [`memsleuth_analysis::ProfileStack::frames`]).

use std::collections::HashMap;
use std::io::{self, Write};

use flate2::write::GzEncoder;
use flate2::Compression;
use memsleuth_analysis::{Location, Profile};

use crate::collapsed::NO_FRAME;

/// Names of the sample types, in the order of each sample's values.
pub const SAMPLE_TYPES: [(&str, &str); 2] = [("inuse_objects", "count"), ("inuse_space", "bytes")];

/// The comment pprof shows (`go tool pprof -comments`) when the values are estimates.
pub const SAMPLED_COMMENT: &str = "estimated (sampled)";

/// Writes the profile as a gzip-compressed pprof protobuf, with no start time.
pub fn pprof_gz(profile: &Profile, out: &mut impl Write) -> io::Result<()> {
    pprof_gz_at(profile, None, out)
}

/// Writes the profile as a gzip-compressed pprof protobuf; `start_unix_ns`, when known, is the
/// wall-clock time at which the capture started (the profile's `time_nanos`).
pub fn pprof_gz_at(
    profile: &Profile,
    start_unix_ns: Option<u64>,
    out: &mut impl Write,
) -> io::Result<()> {
    let proto = pprof_proto(profile, start_unix_ns);
    let mut gz = GzEncoder::new(out, Compression::default());
    gz.write_all(&proto)?;
    gz.finish()?;
    Ok(())
}

/// The uncompressed `perftools.profiles.Profile` message.
pub fn pprof_proto(profile: &Profile, start_unix_ns: Option<u64>) -> Vec<u8> {
    let mut b = Builder::default();
    let sample_types: Vec<(i64, i64)> = SAMPLE_TYPES
        .iter()
        .map(|(ty, unit)| (b.string(ty), b.string(unit)))
        .collect();
    let period_type = (b.string("space"), b.string("bytes"));

    let mut msg = Vec::with_capacity(64 * profile.stacks.len() + 1024);
    for &(ty, unit) in &sample_types {
        put_bytes(&mut msg, 1, &value_type(ty, unit));
    }

    // Samples, interning locations and functions as they are met.
    let mut sample = Vec::new();
    let mut ids = Vec::new();
    for stack in &profile.stacks {
        ids.clear();
        if stack.frames.is_empty() {
            ids.push(b.location_of(&no_frame()));
        }
        for &frame in stack.frames.iter().rev() {
            let id = match profile.locations.get(frame as usize) {
                Some(loc) => b.location_of(loc),
                None => b.location_of(&unknown_frame()),
            };
            ids.push(id);
        }
        sample.clear();
        put_packed(&mut sample, 1, ids.iter().copied());
        put_packed(
            &mut sample,
            2,
            [stack.count, stack.bytes]
                .into_iter()
                .map(|v| clamp_i64(v) as u64),
        );
        put_bytes(&mut msg, 2, &sample);
    }

    let mut buf = Vec::new();
    // native frames' objects: symbolized already, so each says it has functions, files, lines
    for (i, &file) in b.mappings.iter().enumerate() {
        buf.clear();
        put_uint(&mut buf, 1, i as u64 + 1);
        put_uint(&mut buf, 5, file as u64);
        for field in [7, 8, 9] {
            put_uint(&mut buf, field, 1);
        }
        put_bytes(&mut msg, 3, &buf);
    }
    for (i, loc) in b.locations.iter().enumerate() {
        buf.clear();
        let mut line = Vec::new();
        put_uint(&mut line, 1, loc.function_id);
        put_uint(&mut line, 2, u64::from(loc.line));
        put_uint(&mut buf, 1, i as u64 + 1);
        if loc.mapping_id != 0 {
            put_uint(&mut buf, 2, loc.mapping_id);
        }
        put_bytes(&mut buf, 4, &line);
        put_bytes(&mut msg, 4, &buf);
    }
    for (i, f) in b.functions.iter().enumerate() {
        buf.clear();
        put_uint(&mut buf, 1, i as u64 + 1);
        put_uint(&mut buf, 2, f.name as u64);
        put_uint(&mut buf, 3, f.name as u64);
        put_uint(&mut buf, 4, f.file as u64);
        put_bytes(&mut msg, 5, &buf);
    }

    let duration = duration_ns(profile);
    let mut comments = Vec::new();
    for text in [
        crate::labels::profile_title(profile),
        crate::labels::profile_what(profile),
    ] {
        comments.push(b.string(&text));
    }
    if profile.sampled {
        comments.push(b.string(SAMPLED_COMMENT));
    }
    let default_type = sample_types[1].0;

    // The string table comes last, once every string is interned; "" is its entry 0.
    for s in &b.strings {
        put_bytes(&mut msg, 6, s.as_bytes());
    }
    if let Some(t) = start_unix_ns {
        put_uint(&mut msg, 9, clamp_i64(t) as u64);
    }
    put_uint(&mut msg, 10, clamp_i64(duration) as u64);
    put_bytes(&mut msg, 11, &value_type(period_type.0, period_type.1));
    if !comments.is_empty() {
        put_packed(&mut msg, 13, comments.iter().map(|&c| c as u64));
    }
    put_uint(&mut msg, 14, default_type as u64);
    msg
}

/// The span the profile covers: its time bins, or its last memory reading if later.
fn duration_ns(profile: &Profile) -> u64 {
    let bins = profile.bin_ns.saturating_mul(u64::from(profile.bins));
    let last = |s: &[(u64, u64)]| s.last().map_or(0, |&(t, _)| t);
    bins.max(last(&profile.heap)).max(last(&profile.rss))
}

fn no_frame() -> Location {
    Location {
        function: NO_FRAME.into(),
        file: String::new(),
        line: 0,
        library: String::new(),
    }
}

fn unknown_frame() -> Location {
    Location {
        function: "[unknown frame]".into(),
        file: String::new(),
        line: 0,
        library: String::new(),
    }
}

fn clamp_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn value_type(ty: i64, unit: i64) -> Vec<u8> {
    let mut v = Vec::new();
    put_uint(&mut v, 1, ty as u64);
    put_uint(&mut v, 2, unit as u64);
    v
}

#[derive(Debug)]
struct PLocation {
    function_id: u64,
    line: u32,
    /// The native frame's object (a pprof Mapping id); 0 for a Python frame.
    mapping_id: u64,
}

#[derive(Debug)]
struct PFunction {
    name: i64,
    file: i64,
}

/// Interns strings, functions and locations; ids are 1-based positions.
#[derive(Debug)]
struct Builder {
    strings: Vec<String>,
    string_ids: HashMap<String, i64>,
    functions: Vec<PFunction>,
    function_ids: HashMap<(i64, i64), u64>,
    locations: Vec<PLocation>,
    location_ids: HashMap<Location, u64>,
    /// File name string of each mapping (a native frame's library), ids 1-based.
    mappings: Vec<i64>,
    mapping_ids: HashMap<String, u64>,
}

impl Default for Builder {
    fn default() -> Self {
        let mut b = Builder {
            strings: Vec::new(),
            string_ids: HashMap::new(),
            functions: Vec::new(),
            function_ids: HashMap::new(),
            locations: Vec::new(),
            location_ids: HashMap::new(),
            mappings: Vec::new(),
            mapping_ids: HashMap::new(),
        };
        b.string("");
        b
    }
}

impl Builder {
    fn string(&mut self, s: &str) -> i64 {
        if let Some(&i) = self.string_ids.get(s) {
            return i;
        }
        let i = self.strings.len() as i64;
        self.strings.push(s.to_string());
        self.string_ids.insert(s.to_string(), i);
        i
    }

    /// The pprof Mapping of a native frame's library (0: none, a Python frame).
    fn mapping_of(&mut self, library: &str) -> u64 {
        if library.is_empty() {
            return 0;
        }
        if let Some(&id) = self.mapping_ids.get(library) {
            return id;
        }
        let name = self.string(library);
        self.mappings.push(name);
        let id = self.mappings.len() as u64;
        self.mapping_ids.insert(library.to_string(), id);
        id
    }

    fn location_of(&mut self, loc: &Location) -> u64 {
        if let Some(&id) = self.location_ids.get(loc) {
            return id;
        }
        let function = if loc.function.is_empty() {
            "[unknown]"
        } else {
            loc.function.as_str()
        };
        let name = self.string(function);
        let file = self.string(&loc.file);
        let next_fn = self.functions.len() as u64 + 1;
        let function_id = *self.function_ids.entry((name, file)).or_insert(next_fn);
        if function_id == next_fn {
            self.functions.push(PFunction { name, file });
        }
        let mapping_id = self.mapping_of(&loc.library);
        self.locations.push(PLocation {
            function_id,
            line: loc.line,
            mapping_id,
        });
        let id = self.locations.len() as u64;
        self.location_ids.insert(loc.clone(), id);
        id
    }
}

// --- protobuf wire format -------------------------------------------------------------------

const VARINT: u64 = 0;
const LEN: u64 = 2;

fn put_varint(buf: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        buf.push((v as u8) | 0x80);
        v >>= 7;
    }
    buf.push(v as u8);
}

/// A varint field; zero is the default and is left out, as proto3 encoders do.
fn put_uint(buf: &mut Vec<u8>, field: u64, v: u64) {
    if v != 0 {
        put_varint(buf, field << 3 | VARINT);
        put_varint(buf, v);
    }
}

fn put_bytes(buf: &mut Vec<u8>, field: u64, bytes: &[u8]) {
    put_varint(buf, field << 3 | LEN);
    put_varint(buf, bytes.len() as u64);
    buf.extend_from_slice(bytes);
}

/// A packed repeated varint field (negative int64 values are not used here).
fn put_packed(buf: &mut Vec<u8>, field: u64, values: impl IntoIterator<Item = u64>) {
    let mut packed = Vec::new();
    for v in values {
        put_varint(&mut packed, v);
    }
    put_bytes(buf, field, &packed);
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;
    use crate::collapsed::test_profiles::*;

    // --- a minimal protobuf reader ---------------------------------------------------------

    #[derive(Debug, Clone, Copy)]
    enum Field<'a> {
        Varint(u64),
        Bytes(&'a [u8]),
    }

    fn varint(buf: &[u8], pos: &mut usize) -> u64 {
        let mut v = 0u64;
        let mut shift = 0;
        loop {
            let b = buf[*pos];
            *pos += 1;
            v |= u64::from(b & 0x7f) << shift;
            if b < 0x80 {
                return v;
            }
            shift += 7;
            assert!(shift < 64, "varint too long");
        }
    }

    fn fields(buf: &[u8]) -> Vec<(u64, Field<'_>)> {
        let mut pos = 0;
        let mut out = Vec::new();
        while pos < buf.len() {
            let key = varint(buf, &mut pos);
            let field = match key & 7 {
                0 => Field::Varint(varint(buf, &mut pos)),
                2 => {
                    let len = varint(buf, &mut pos) as usize;
                    let b = &buf[pos..pos + len];
                    pos += len;
                    Field::Bytes(b)
                }
                wt => panic!("unexpected wire type {wt}"),
            };
            out.push((key >> 3, field));
        }
        assert_eq!(pos, buf.len());
        out
    }

    fn packed(f: Field<'_>) -> Vec<u64> {
        match f {
            Field::Bytes(b) => {
                let mut pos = 0;
                let mut out = Vec::new();
                while pos < b.len() {
                    out.push(varint(b, &mut pos));
                }
                out
            }
            Field::Varint(v) => vec![v],
        }
    }

    fn uint(fs: &[(u64, Field<'_>)], n: u64) -> u64 {
        fs.iter()
            .find(|(k, _)| *k == n)
            .map_or(0, |(_, f)| match f {
                Field::Varint(v) => *v,
                Field::Bytes(_) => panic!("field {n} is not a varint"),
            })
    }

    fn bytes<'a>(fs: &[(u64, Field<'a>)], n: u64) -> Vec<&'a [u8]> {
        fs.iter()
            .filter(|(k, _)| *k == n)
            .map(|(_, f)| match f {
                Field::Bytes(b) => *b,
                Field::Varint(_) => panic!("field {n} is not length-delimited"),
            })
            .collect()
    }

    /// The decoded parts of a pprof profile this renderer writes.
    #[derive(Debug)]
    struct Decoded {
        strings: Vec<String>,
        sample_types: Vec<(String, String)>,
        /// Per sample: frames as `function (file:line)`, leaf first, and the values.
        samples: Vec<(Vec<String>, Vec<u64>)>,
        default_type: String,
        comments: Vec<String>,
        time_nanos: u64,
        duration_nanos: u64,
        locations: usize,
        functions: usize,
        mappings: usize,
    }

    fn decode(gz: &[u8]) -> Decoded {
        let mut raw = Vec::new();
        flate2::read::GzDecoder::new(gz)
            .read_to_end(&mut raw)
            .unwrap();
        let top = fields(&raw);
        let strings: Vec<String> = bytes(&top, 6)
            .into_iter()
            .map(|b| String::from_utf8(b.to_vec()).unwrap())
            .collect();
        let s = |i: u64| strings[i as usize].clone();
        let sample_types = bytes(&top, 1)
            .into_iter()
            .map(|b| {
                let f = fields(b);
                (s(uint(&f, 1)), s(uint(&f, 2)))
            })
            .collect();
        let mut functions = HashMap::new();
        for b in bytes(&top, 5) {
            let f = fields(b);
            let id = uint(&f, 1);
            assert!(id > 0);
            assert_eq!(uint(&f, 2), uint(&f, 3), "system_name is the name");
            assert!(
                functions
                    .insert(id, (s(uint(&f, 2)), s(uint(&f, 4))))
                    .is_none(),
                "function ids are unique"
            );
        }
        let mut mappings = HashMap::new();
        for b in bytes(&top, 3) {
            let f = fields(b);
            assert!(uint(&f, 7) == 1 && uint(&f, 9) == 1, "symbolized already");
            assert!(mappings.insert(uint(&f, 1), s(uint(&f, 5))).is_none());
        }
        let mut locations = HashMap::new();
        for b in bytes(&top, 4) {
            let f = fields(b);
            let lines = bytes(&f, 4);
            assert_eq!(lines.len(), 1, "one line per location");
            let line = fields(lines[0]);
            let (name, file) = &functions[&uint(&line, 1)];
            let n = uint(&line, 2);
            let library = match uint(&f, 2) {
                0 => String::new(),
                id => mappings[&id].clone(),
            };
            let label = crate::labels::frame(&Location {
                function: name.clone(),
                file: file.clone(),
                line: n as u32,
                library,
            });
            assert!(locations.insert(uint(&f, 1), label).is_none());
        }
        let samples = bytes(&top, 2)
            .into_iter()
            .map(|b| {
                let f = fields(b);
                let ids: Vec<u64> = f
                    .iter()
                    .filter(|(k, _)| *k == 1)
                    .flat_map(|(_, v)| packed(*v))
                    .collect();
                let values: Vec<u64> = f
                    .iter()
                    .filter(|(k, _)| *k == 2)
                    .flat_map(|(_, v)| packed(*v))
                    .collect();
                (ids.iter().map(|i| locations[i].clone()).collect(), values)
            })
            .collect();
        let comments = top
            .iter()
            .filter(|(k, _)| *k == 13)
            .flat_map(|(_, v)| packed(*v))
            .map(s)
            .collect();
        Decoded {
            sample_types,
            samples,
            default_type: s(uint(&top, 14)),
            comments,
            time_nanos: uint(&top, 9),
            duration_nanos: uint(&top, 10),
            locations: locations.len(),
            functions: functions.len(),
            mappings: mappings.len(),
            strings,
        }
    }

    fn render(p: &Profile, start: Option<u64>) -> Vec<u8> {
        let mut out = Vec::new();
        pprof_gz_at(p, start, &mut out).unwrap();
        out
    }

    #[test]
    fn native_frames_name_their_object_in_a_mapping() {
        let mut p = small();
        let at = p.locations.len() as u32;
        for (function, file, line) in [("leak", "cmem.c", 42), ("helper", "cmem.c", 7)] {
            p.locations.push(Location {
                function: function.into(),
                file: file.into(),
                line,
                library: "cmem.so".into(),
            });
        }
        let mut stack = p.stacks[0].clone();
        stack.frames.push(at);
        stack.frames.push(at + 1);
        p.stacks.push(stack);
        let d = decode(&render(&p, None));
        let last = d.samples.last().unwrap();
        assert_eq!(last.0[0], "helper (cmem.c:7) [cmem.so]");
        assert_eq!(last.0[1], "leak (cmem.c:42) [cmem.so]");
        // Python frames have no mapping
        assert!(!last.0[2].contains('['), "{:?}", last.0);
        assert_eq!(d.mappings, 1, "one mapping for the one library");
    }

    #[test]
    fn output_is_gzip() {
        let out = render(&small(), None);
        assert_eq!(&out[..2], &[0x1f, 0x8b]);
    }

    #[test]
    fn decodes_back_leaf_first_with_values_and_names() {
        let p = small();
        let d = decode(&render(&p, Some(1_700_000_000_000_000_000)));
        assert_eq!(d.strings[0], "");
        assert_eq!(
            d.sample_types,
            vec![
                ("inuse_objects".to_string(), "count".to_string()),
                ("inuse_space".to_string(), "bytes".to_string())
            ]
        );
        assert_eq!(d.default_type, "inuse_space");
        assert_eq!(d.time_nanos, 1_700_000_000_000_000_000);
        assert_eq!(d.duration_nanos, 10_000_000_000);
        assert_eq!(
            d.comments,
            vec![
                "leaks in app.py",
                "allocated while tracking and still alive at the end"
            ]
        );
        assert_eq!(d.samples.len(), p.stacks.len());
        for ((frames, values), stack) in d.samples.iter().zip(&p.stacks) {
            assert_eq!(values, &vec![stack.count, stack.bytes]);
            let mut want: Vec<String> = stack
                .frames
                .iter()
                .map(|&f| crate::labels::frame(&p.locations[f as usize]))
                .collect();
            want.reverse();
            if want.is_empty() {
                want.push(NO_FRAME.to_string());
            }
            assert_eq!(frames, &want);
        }
        // Leaf first: the allocation site, then its callers.
        assert_eq!(
            d.samples[0].0,
            vec![
                "cache_put (store.py:31)",
                "load (store.py:20)",
                "main (app.py:10)",
                "<module> (app.py:1)"
            ]
        );
        // Names are kept as they are (protobuf strings need no escaping).
        assert_eq!(d.samples[1].0[1], "parse;fast (fmt</script>.py:7)");
        // One location per distinct location used, plus the no-frame one; one function per
        // distinct (name, file).
        assert_eq!(d.locations, 8);
        assert_eq!(d.functions, 8);
    }

    #[test]
    fn sampled_profiles_say_so_and_times_are_optional() {
        let mut p = small();
        p.sampled = true;
        p.bins = 0;
        let d = decode(&render(&p, None));
        assert!(d.comments.iter().any(|c| c == SAMPLED_COMMENT));
        assert_eq!(d.time_nanos, 0);
        // No bins: the duration is the last memory reading.
        assert_eq!(d.duration_nanos, 10_000_000_000);
        let empty = decode(&render(&Profile::default(), None));
        assert!(empty.samples.is_empty());
        assert_eq!(empty.default_type, "inuse_space");
    }

    #[test]
    fn big_profiles_share_locations_and_keep_totals() {
        let p = big(10_000, 128);
        let d = decode(&render(&p, None));
        assert_eq!(d.samples.len(), 10_000);
        assert!(d.locations <= p.locations.len());
        let bytes: u64 = d.samples.iter().map(|(_, v)| v[1]).sum();
        assert_eq!(bytes, p.total_bytes());
        let count: u64 = d.samples.iter().map(|(_, v)| v[0]).sum();
        assert_eq!(count, p.total_count());
    }

    #[test]
    fn go_tool_pprof_reads_it() {
        let go = std::process::Command::new("go").arg("version").output();
        if !go.is_ok_and(|o| o.status.success()) {
            println!("skipped: `go` is not on PATH, so `go tool pprof` cannot be run");
            return;
        }
        let dir = std::env::temp_dir().join(format!("memsleuth-pprof-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("small.pb.gz");
        let mut p = small();
        p.sampled = true;
        std::fs::write(&file, render(&p, Some(1_700_000_000_000_000_000))).unwrap();
        let out = std::process::Command::new("go")
            .args(["tool", "pprof", "-top", "-nodecount=100", "-symbolize=none"])
            .arg(&file)
            .env("GOCACHE", dir.join("gocache"))
            .env("PPROF_TMPDIR", &dir)
            .env("HOME", &dir)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        let _ = std::fs::remove_dir_all(&dir);
        assert!(out.status.success(), "pprof failed: {stderr}\n{stdout}");
        let text = format!("{stdout}\n{stderr}");
        println!("{text}");
        assert!(text.contains("Type: inuse_space"), "{text}");
        // `flat` goes to the first location of a sample: the leaf, if the order is right.
        let row = |name: &str| {
            text.lines()
                .find(|l| l.trim_end().ends_with(name))
                .unwrap_or_else(|| panic!("no row for {name}:\n{text}"))
                .split_whitespace()
                .map(str::to_string)
                .collect::<Vec<_>>()
        };
        let cache_put = row("cache_put");
        assert_eq!(cache_put[0], "6MB", "{text}");
        let module = row("<module>");
        assert_eq!(module[0], "0", "callers have no flat bytes: {text}");
        assert!(
            module[3].starts_with("10"),
            "but all of them cumulatively: {text}"
        );
    }
}
