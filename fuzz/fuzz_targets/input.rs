//! Reads structured values off the fuzzer's bytes: each target turns the raw input into
//! the shapes its decoder takes (a split point, a few integers, the rest as text).
#![allow(dead_code)]

/// The fuzzer's input, consumed from the front.
pub struct Input<'a>(pub &'a [u8]);

impl<'a> Input<'a> {
    /// One byte, 0 when the input is used up.
    pub fn u8(&mut self) -> u8 {
        match self.0.split_first() {
            Some((b, rest)) => {
                self.0 = rest;
                *b
            }
            None => 0,
        }
    }

    /// Eight bytes little-endian, zero-padded at the end of the input.
    pub fn i64(&mut self) -> i64 {
        let mut buf = [0u8; 8];
        let n = self.0.len().min(8);
        buf[..n].copy_from_slice(&self.0[..n]);
        self.0 = &self.0[n..];
        i64::from_le_bytes(buf)
    }

    /// Up to `max` bytes, their count chosen by the next byte.
    pub fn bytes(&mut self, max: usize) -> &'a [u8] {
        let n = (self.u8() as usize).min(max).min(self.0.len());
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        head
    }

    /// Text of up to `max` bytes (invalid UTF-8 replaced).
    pub fn string(&mut self, max: usize) -> String {
        String::from_utf8_lossy(self.bytes(max)).into_owned()
    }

    /// Everything left.
    pub fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.0)
    }
}
