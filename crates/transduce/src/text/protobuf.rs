//! The protobuf wire format, just enough to read and write SentencePiece model files
//! (`ModelProto`): varints, 32-bit floats and length-delimited fields.

/// A field's payload as it appears on the wire.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value<'a> {
    Varint(u64),
    Fixed64(u64),
    Bytes(&'a [u8]),
    Fixed32(u32),
}

impl<'a> Value<'a> {
    pub fn as_u64(&self, field: &str) -> Result<u64, String> {
        match *self {
            Value::Varint(v) => Ok(v),
            other => Err(format!("field {field}: expected a varint, found {other:?}")),
        }
    }

    /// An `int32` field (negative values are ten-byte varints).
    pub fn as_i32(&self, field: &str) -> Result<i32, String> {
        Ok(self.as_u64(field)? as i64 as i32)
    }

    pub fn as_bool(&self, field: &str) -> Result<bool, String> {
        Ok(self.as_u64(field)? != 0)
    }

    pub fn as_f32(&self, field: &str) -> Result<f32, String> {
        match *self {
            Value::Fixed32(v) => Ok(f32::from_bits(v)),
            other => Err(format!("field {field}: expected a 32-bit float, found {other:?}")),
        }
    }

    pub fn as_bytes(&self, field: &str) -> Result<&'a [u8], String> {
        match *self {
            Value::Bytes(b) => Ok(b),
            other => Err(format!("field {field}: expected bytes, found {other:?}")),
        }
    }

    pub fn as_str(&self, field: &str) -> Result<&'a str, String> {
        std::str::from_utf8(self.as_bytes(field)?).map_err(|_| format!("field {field}: not valid UTF-8"))
    }
}

/// Iterates over the `(field number, value)` pairs of one message.
pub struct Fields<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Fields<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Fields { data, pos: 0 }
    }

    fn varint(&mut self) -> Result<u64, String> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = *self.data.get(self.pos).ok_or_else(|| format!("truncated varint at byte {}", self.pos))?;
            self.pos += 1;
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(format!("varint longer than 10 bytes at byte {}", self.pos))
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.data.len());
        let end = end.ok_or_else(|| format!("field of {n} bytes at byte {} runs past the end", self.pos))?;
        let bytes = &self.data[self.pos..end];
        self.pos = end;
        Ok(bytes)
    }
}

impl<'a> Iterator for Fields<'a> {
    type Item = Result<(u32, Value<'a>), String>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.pos >= self.data.len() {
            return None;
        }
        let mut read = || -> Result<(u32, Value<'a>), String> {
            let key = self.varint()?;
            let field = (key >> 3) as u32;
            let value = match key & 7 {
                0 => Value::Varint(self.varint()?),
                1 => Value::Fixed64(u64::from_le_bytes(self.take(8)?.try_into().expect("8 bytes"))),
                2 => {
                    let n = self.varint()? as usize;
                    Value::Bytes(self.take(n)?)
                }
                5 => Value::Fixed32(u32::from_le_bytes(self.take(4)?.try_into().expect("4 bytes"))),
                wire => return Err(format!("field {field}: unsupported wire type {wire}")),
            };
            Ok((field, value))
        };
        let item = read();
        if item.is_err() {
            self.pos = self.data.len();
        }
        Some(item)
    }
}

/// Appends fields of one message to a buffer.
#[derive(Debug, Default)]
pub struct Writer {
    pub buf: Vec<u8>,
}

impl Writer {
    fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.buf.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.buf.push(v as u8);
    }

    fn key(&mut self, field: u32, wire: u64) {
        self.varint((u64::from(field) << 3) | wire);
    }

    pub fn uint(&mut self, field: u32, v: u64) {
        self.key(field, 0);
        self.varint(v);
    }

    pub fn int32(&mut self, field: u32, v: i32) {
        self.uint(field, v as i64 as u64);
    }

    pub fn bool(&mut self, field: u32, v: bool) {
        self.uint(field, u64::from(v));
    }

    pub fn f32(&mut self, field: u32, v: f32) {
        self.key(field, 5);
        self.buf.extend_from_slice(&v.to_bits().to_le_bytes());
    }

    pub fn bytes(&mut self, field: u32, v: &[u8]) {
        self.key(field, 2);
        self.varint(v.len() as u64);
        self.buf.extend_from_slice(v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_round_trip() {
        let mut w = Writer::default();
        w.uint(3, 300);
        w.int32(40, -1);
        w.f32(2, -2.5);
        w.bytes(1, "▁a".as_bytes());
        w.bool(5, true);
        let fields: Vec<_> = Fields::new(&w.buf).collect::<Result<_, _>>().unwrap();
        assert_eq!(fields[0], (3, Value::Varint(300)));
        assert_eq!(fields[1].1.as_i32("x").unwrap(), -1);
        assert_eq!(fields[2].1.as_f32("x").unwrap(), -2.5);
        assert_eq!(fields[3].1.as_str("x").unwrap(), "▁a");
        assert!(fields[4].1.as_bool("x").unwrap());
    }

    #[test]
    fn truncated_input_is_an_error_not_a_panic() {
        let mut w = Writer::default();
        w.bytes(1, b"hello");
        let cut = &w.buf[..4];
        let err = Fields::new(cut).collect::<Result<Vec<_>, _>>().unwrap_err();
        assert!(err.contains("runs past the end"), "{err}");
        assert!(Fields::new(&[0x80]).next().unwrap().is_err());
    }
}
