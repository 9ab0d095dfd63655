//! Following a capture another process is still writing (`memsleuth live`): how much of it is
//! whole chunks, so a reader can read that far and wait for more, never into a chunk the
//! recorder has only half written.

use std::io::{Read, Seek, SeekFrom};

use crate::{CHUNK_HEADER_LEN, CHUNK_MARKER, MAX_CHUNK_PAYLOAD, PREAMBLE_LEN};

/// Where complete chunks end in a capture being written, found by walking chunk headers from a
/// chunk boundary already known (0: the file's start). Checksums are the reader's business; a
/// header that is not one ends the walk there, and the reader reports it when it gets there.
#[derive(Debug, Default, Clone, Copy)]
pub struct Follow {
    /// The end of the complete chunks found so far (a chunk boundary), 0 before the preamble.
    whole: u64,
}

impl Follow {
    pub fn new() -> Follow {
        Follow::default()
    }

    /// The end of the complete chunks of `file` now. Each call goes on from the last: a
    /// growing capture is walked once.
    pub fn whole_len(&mut self, file: &mut (impl Read + Seek)) -> std::io::Result<u64> {
        let len = file.seek(SeekFrom::End(0))?;
        if self.whole == 0 {
            if len < PREAMBLE_LEN as u64 {
                return Ok(0);
            }
            self.whole = PREAMBLE_LEN as u64;
        }
        let mut head = [0u8; CHUNK_HEADER_LEN];
        while self.whole + CHUNK_HEADER_LEN as u64 <= len {
            file.seek(SeekFrom::Start(self.whole))?;
            file.read_exact(&mut head)?;
            if head[0..4] != CHUNK_MARKER {
                break;
            }
            let payload = u32::from_le_bytes([head[4], head[5], head[6], head[7]]);
            if payload > MAX_CHUNK_PAYLOAD {
                break;
            }
            let end = self.whole + CHUNK_HEADER_LEN as u64 + u64::from(payload);
            if end > len {
                break;
            }
            self.whole = end;
        }
        Ok(self.whole)
    }
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use super::*;

    fn chunk(payload: &[u8]) -> Vec<u8> {
        let mut c = CHUNK_MARKER.to_vec();
        c.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        c.extend_from_slice(&[0; 5]);
        c.extend_from_slice(payload);
        c
    }

    #[test]
    fn only_whole_chunks_count_and_the_walk_goes_on_as_the_file_grows() {
        let mut bytes = vec![0u8; PREAMBLE_LEN];
        let first = chunk(b"header");
        let second = chunk(b"events....");
        bytes.extend_from_slice(&first);
        // the second chunk half written
        bytes.extend_from_slice(&second[..9]);
        let mut f = Follow::new();
        let whole = f.whole_len(&mut Cursor::new(bytes.clone())).unwrap();
        assert_eq!(whole, (PREAMBLE_LEN + first.len()) as u64);
        bytes.extend_from_slice(&second[9..]);
        let whole = f.whole_len(&mut Cursor::new(bytes.clone())).unwrap();
        assert_eq!(whole, bytes.len() as u64);
        // too short for a preamble
        assert_eq!(
            Follow::new()
                .whole_len(&mut Cursor::new(vec![0u8; 5]))
                .unwrap(),
            0
        );
        // garbage where a header should be ends the walk before it
        let mut bad = bytes.clone();
        bad.extend_from_slice(b"not a chunk header at all");
        assert_eq!(
            Follow::new().whole_len(&mut Cursor::new(bad)).unwrap(),
            bytes.len() as u64
        );
    }
}
