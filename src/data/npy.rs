//! NumPy's `.npy` arrays (format versions 1 to 3): the header's dtype and shape, then the values in C
//! order, read as f32. Integer and float dtypes of either byte order; no object arrays, no Fortran
//! order (`np.ascontiguousarray` first).

use std::path::Path;

use crate::error::DataError;

/// An array's shape and its values, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct NpyArray {
    pub shape: Vec<usize>,
    pub values: Vec<f32>,
}

const DTYPES: &str = "u1, i1, u2, i2, u4, i4, u8, i8, f4, f8 (either byte order), or b1";

pub fn read(path: &Path) -> Result<NpyArray, DataError> {
    let bytes = std::fs::read(path).map_err(|source| DataError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse(&bytes).map_err(|message| DataError::Invalid {
        what: path.display().to_string(),
        message,
    })
}

fn parse(bytes: &[u8]) -> Result<NpyArray, String> {
    if bytes.len() < 10 || &bytes[..6] != b"\x93NUMPY" {
        return Err("is not a NumPy .npy file (no \\x93NUMPY magic)".into());
    }
    let (header_len, start) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        2 | 3 if bytes.len() >= 12 => (
            u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
            12,
        ),
        v => return Err(format!(".npy format version {v} is not one of 1, 2, 3")),
    };
    let header = bytes
        .get(start..start + header_len)
        .ok_or("the header is cut short")?;
    let header = std::str::from_utf8(header).map_err(|_| "the header is not text")?;
    let descr = quoted_value(header, "descr").ok_or("the header names no 'descr' (dtype)")?;
    if header_value(header, "fortran_order").is_some_and(|v| v.starts_with("True")) {
        return Err("is stored in Fortran order: save np.ascontiguousarray(a) instead".into());
    }
    let shape = parse_shape(header).ok_or("the header's 'shape' is not a tuple of sizes")?;
    let (little, code) = match descr.as_bytes().first() {
        Some(b'<' | b'|' | b'=') => (true, &descr[1..]),
        Some(b'>') => (false, &descr[1..]),
        _ => (true, descr),
    };
    let width: usize = match code {
        "u1" | "i1" | "b1" => 1,
        "u2" | "i2" => 2,
        "u4" | "i4" | "f4" => 4,
        "u8" | "i8" | "f8" => 8,
        _ => {
            return Err(format!(
                "dtype {descr:?} is not supported; allowed: {DTYPES}"
            ))
        }
    };
    let n: usize = shape.iter().product();
    let data = &bytes[start + header_len..];
    if data.len() < n * width {
        return Err(format!(
            "holds {} bytes of values, the shape {shape:?} of {descr} needs {}",
            data.len(),
            n * width
        ));
    }
    let values = data[..n * width]
        .chunks_exact(width)
        .map(|c| {
            let mut b = [0u8; 8];
            b[..width].copy_from_slice(c);
            if !little {
                b[..width].reverse();
            }
            match code {
                "u1" | "b1" => b[0] as f32,
                "i1" => b[0] as i8 as f32,
                "u2" => u16::from_le_bytes([b[0], b[1]]) as f32,
                "i2" => i16::from_le_bytes([b[0], b[1]]) as f32,
                "u4" => u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f32,
                "i4" => i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f32,
                "f4" => f32::from_le_bytes([b[0], b[1], b[2], b[3]]),
                "u8" => u64::from_le_bytes(b) as f32,
                "i8" => i64::from_le_bytes(b) as f32,
                _ => f64::from_le_bytes(b) as f32,
            }
        })
        .collect();
    Ok(NpyArray { shape, values })
}

/// The text after `'key':` in the header dict.
fn header_value<'a>(header: &'a str, key: &str) -> Option<&'a str> {
    let at = header.find(&format!("'{key}'"))? + key.len() + 2;
    Some(header[at..].trim_start().strip_prefix(':')?.trim_start())
}

fn quoted_value<'a>(header: &'a str, key: &str) -> Option<&'a str> {
    let v = header_value(header, key)?.strip_prefix('\'')?;
    Some(&v[..v.find('\'')?])
}

fn parse_shape(header: &str) -> Option<Vec<usize>> {
    let v = header_value(header, "shape")?.strip_prefix('(')?;
    let inside = &v[..v.find(')')?];
    inside
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().ok())
        .collect()
}

/// A version-1 `.npy` file of `values` with `shape` and dtype `descr` (for tests).
#[cfg(test)]
pub fn encode(descr: &str, shape: &[usize], values: &[u8]) -> Vec<u8> {
    let dims: Vec<String> = shape.iter().map(|s| s.to_string()).collect();
    let tuple = if dims.len() == 1 {
        format!("({},)", dims[0])
    } else {
        format!("({})", dims.join(", "))
    };
    let mut header = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {tuple}, }}");
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend((header.len() as u16).to_le_bytes());
    out.extend(header.as_bytes());
    out.extend(values);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_each_dtype_and_shape_and_refuses_what_it_cannot_read() {
        let f: Vec<u8> = [1.5f32, -2.0, 3.25, 0.0, 8.0, 9.0]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        let a = parse(&encode("<f4", &[2, 3], &f)).unwrap();
        assert_eq!(a.shape, [2, 3]);
        assert_eq!(a.values, [1.5, -2.0, 3.25, 0.0, 8.0, 9.0]);
        let a = parse(&encode("|u1", &[4], &[0, 7, 255, 16])).unwrap();
        assert_eq!((a.shape, a.values), (vec![4], vec![0.0, 7.0, 255.0, 16.0]));
        let big: Vec<u8> = [3i64, -1].iter().flat_map(|v| v.to_be_bytes()).collect();
        assert_eq!(
            parse(&encode(">i8", &[2], &big)).unwrap().values,
            [3.0, -1.0]
        );
        let d: Vec<u8> = [0.5f64].iter().flat_map(|v| v.to_le_bytes()).collect();
        assert_eq!(parse(&encode("<f8", &[1, 1], &d)).unwrap().values, [0.5]);

        let e = parse(&encode("<c8", &[1], &[0; 8])).unwrap_err();
        assert!(e.contains("not supported") && e.contains("f4"), "{e}");
        let e = parse(&encode("<f4", &[4], &f[..8])).unwrap_err();
        assert!(e.contains("needs 16"), "{e}");
        let mut fortran = encode("<f4", &[1], &f[..4]);
        let at = fortran.windows(5).position(|w| w == b"False").unwrap();
        fortran[at..at + 5].copy_from_slice(b"True ");
        assert!(parse(&fortran).unwrap_err().contains("Fortran order"));
        assert!(parse(b"PK\x03\x04 not numpy")
            .unwrap_err()
            .contains("magic"));
    }
}
