//! Primitive encodings: unsigned LEB128 varints, length-prefixed UTF-8 strings, lists.

/// Appends primitives to a byte buffer. Encoding never fails.
pub(crate) struct Enc<'a>(pub(crate) &'a mut Vec<u8>);

impl Enc<'_> {
    pub(crate) fn u64(&mut self, mut v: u64) {
        loop {
            let byte = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                self.0.push(byte);
                return;
            }
            self.0.push(byte | 0x80);
        }
    }

    pub(crate) fn i64(&mut self, v: i64) {
        // zigzag, so small negative numbers stay short
        self.u64(((v << 1) ^ (v >> 63)) as u64);
    }

    pub(crate) fn u8(&mut self, v: u8) {
        self.0.push(v);
    }

    pub(crate) fn str(&mut self, s: &str) {
        self.u64(s.len() as u64);
        self.0.extend_from_slice(s.as_bytes());
    }

    pub(crate) fn strs(&mut self, list: &[String]) {
        self.u64(list.len() as u64);
        for s in list {
            self.str(s);
        }
    }
}

/// Why a decode failed, without a file offset (the caller knows where the record started).
#[derive(Debug)]
pub(crate) struct DecodeError(pub(crate) &'static str);

/// Reads primitives from a record body. Every read is bounds-checked.
pub(crate) struct Dec<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Dec<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Dec { buf, pos: 0 }
    }

    /// Bytes not yet read.
    pub(crate) fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    pub(crate) fn u64(&mut self) -> Result<u64, DecodeError> {
        let mut value: u64 = 0;
        for shift in (0..64).step_by(7) {
            let byte = *self
                .buf
                .get(self.pos)
                .ok_or(DecodeError("varint runs past the end of its record"))?;
            self.pos += 1;
            let bits = u64::from(byte & 0x7f);
            if shift == 63 && bits > 1 {
                return Err(DecodeError("varint overflows 64 bits"));
            }
            value |= bits << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(DecodeError("varint longer than 10 bytes"))
    }

    pub(crate) fn i64(&mut self) -> Result<i64, DecodeError> {
        let raw = self.u64()?;
        Ok(((raw >> 1) as i64) ^ -((raw & 1) as i64))
    }

    pub(crate) fn u8(&mut self) -> Result<u8, DecodeError> {
        let byte = *self
            .buf
            .get(self.pos)
            .ok_or(DecodeError("byte runs past the end of its record"))?;
        self.pos += 1;
        Ok(byte)
    }

    /// A count of items that each take at least one byte: bounded by what is left, so a corrupt
    /// count cannot make the reader allocate without limit.
    pub(crate) fn count(&mut self) -> Result<usize, DecodeError> {
        let n = self.u64()?;
        let left = (self.buf.len() - self.pos) as u64;
        if n > left {
            return Err(DecodeError("list length exceeds the record"));
        }
        Ok(n as usize)
    }

    pub(crate) fn bytes(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.buf.len())
            .ok_or(DecodeError("length runs past the end of its record"))?;
        let out = &self.buf[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    pub(crate) fn str(&mut self) -> Result<String, DecodeError> {
        let n = self.count()?;
        let raw = self.bytes(n)?;
        String::from_utf8(raw.to_vec()).map_err(|_| DecodeError("string is not valid UTF-8"))
    }

    pub(crate) fn strs(&mut self) -> Result<Vec<String>, DecodeError> {
        let n = self.count()?;
        (0..n).map(|_| self.str()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varint_edges_round_trip() {
        for v in [0, 1, 127, 128, 300, u64::from(u32::MAX), u64::MAX] {
            let mut buf = Vec::new();
            Enc(&mut buf).u64(v);
            assert_eq!(Dec::new(&buf).u64().unwrap(), v);
        }
        for v in [0, -1, 1, i64::MIN, i64::MAX] {
            let mut buf = Vec::new();
            Enc(&mut buf).i64(v);
            assert_eq!(Dec::new(&buf).i64().unwrap(), v);
        }
    }

    #[test]
    fn overlong_varint_is_rejected() {
        let buf = [0xffu8; 11];
        assert!(Dec::new(&buf).u64().is_err());
        let buf = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02];
        assert!(Dec::new(&buf).u64().is_err());
    }

    #[test]
    fn huge_list_count_is_rejected_without_allocating() {
        let mut buf = Vec::new();
        Enc(&mut buf).u64(u64::MAX / 2);
        assert!(Dec::new(&buf).strs().is_err());
    }
}
