//! The subject of a client certificate as an RFC 4514 string (`CN=orders,O=example`),
//! read from the DER that rustls has already verified. Only the few DER shapes of the
//! `subject` field are read, every length checked; anything else is `None`.

/// A DER element: its tag and contents, and what follows it.
fn tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    if tag & 0x1f == 0x1f {
        return None; // high tag numbers do not occur in a Name
    }
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        (len, &rest[n..])
    };
    if rest.len() < len {
        return None;
    }
    Some((tag, &rest[..len], &rest[len..]))
}

/// Expects an element with `tag`; returns its contents and what follows.
fn expect(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    let (t, body, rest) = tlv(input)?;
    (t == tag).then_some((body, rest))
}

const SEQUENCE: u8 = 0x30;
const SET: u8 = 0x31;
const OID: u8 = 0x06;

/// The subject of the DER certificate `cert` in RFC 4514 form.
pub(crate) fn subject_of(cert: &[u8]) -> Option<String> {
    let (certificate, _) = expect(cert, SEQUENCE)?;
    let (tbs, _) = expect(certificate, SEQUENCE)?;
    let mut rest = tbs;
    // version [0] EXPLICIT, optional
    if let Some((0xa0, _, after)) = tlv(rest) {
        rest = after;
    }
    let (_, rest) = expect(rest, 0x02)?; // serialNumber
    let (_, rest) = expect(rest, SEQUENCE)?; // signature
    let (_, rest) = expect(rest, SEQUENCE)?; // issuer
    let (_, rest) = expect(rest, SEQUENCE)?; // validity
    let (mut name, _) = expect(rest, SEQUENCE)?; // subject
    let mut rdns = Vec::new();
    while !name.is_empty() {
        let (mut set, after) = expect(name, SET)?;
        name = after;
        let mut parts = Vec::new();
        while !set.is_empty() {
            let (atv, after) = expect(set, SEQUENCE)?;
            set = after;
            let (oid, value) = expect(atv, OID)?;
            let (vtag, vbody, _) = tlv(value)?;
            parts.push(format!(
                "{}={}",
                attr_name(oid),
                attr_value(vtag, vbody, value)
            ));
        }
        rdns.push(parts.join("+"));
    }
    // RFC 4514: the last RDN of the sequence comes first.
    rdns.reverse();
    Some(rdns.join(","))
}

/// The short name of a well-known attribute type, else its dotted OID.
fn attr_name(oid: &[u8]) -> String {
    match oid {
        [0x55, 0x04, 0x03] => "CN".into(),
        [0x55, 0x04, 0x06] => "C".into(),
        [0x55, 0x04, 0x07] => "L".into(),
        [0x55, 0x04, 0x08] => "ST".into(),
        [0x55, 0x04, 0x09] => "STREET".into(),
        [0x55, 0x04, 0x0a] => "O".into(),
        [0x55, 0x04, 0x0b] => "OU".into(),
        [0x09, 0x92, 0x26, 0x89, 0x93, 0xf2, 0x2c, 0x64, 0x01, 0x19] => "DC".into(),
        [0x09, 0x92, 0x26, 0x89, 0x93, 0xf2, 0x2c, 0x64, 0x01, 0x01] => "UID".into(),
        _ => dotted(oid),
    }
}

/// An OID's dotted form.
fn dotted(oid: &[u8]) -> String {
    let mut arcs: Vec<u64> = Vec::new();
    let mut acc: u64 = 0;
    for &b in oid {
        acc = (acc << 7) | u64::from(b & 0x7f);
        if b & 0x80 == 0 {
            if arcs.is_empty() {
                let first = (acc / 40).min(2);
                arcs.push(first);
                arcs.push(acc - first * 40);
            } else {
                arcs.push(acc);
            }
            acc = 0;
        }
    }
    arcs.iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join(".")
}

/// A string value, escaped as RFC 4514 asks; other types as `#` and the DER in hex.
fn attr_value(tag: u8, body: &[u8], der: &[u8]) -> String {
    let text = match tag {
        // UTF8String, PrintableString, IA5String
        0x0c | 0x13 | 0x16 => std::str::from_utf8(body).ok().map(str::to_owned),
        // TeletexString: read as Latin-1, as most software does
        0x14 => Some(body.iter().map(|&b| char::from(b)).collect()),
        // BMPString: UCS-2, big-endian
        0x1e if body.len().is_multiple_of(2) => char::decode_utf16(
            body.chunks_exact(2)
                .map(|c| u16::from_be_bytes([c[0], c[1]])),
        )
        .collect::<Result<String, _>>()
        .ok(),
        _ => None,
    };
    match text {
        Some(t) => escape(&t),
        None => {
            let (_, _, rest) = tlv(der).unwrap_or((0, &[], &[]));
            let used = &der[..der.len() - rest.len()];
            let hex: String = used.iter().map(|b| format!("{b:02x}")).collect();
            format!("#{hex}")
        }
    }
}

/// RFC 4514 escaping of an attribute value.
fn escape(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    let last = v.chars().count().saturating_sub(1);
    for (i, c) in v.chars().enumerate() {
        let special = matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';')
            || (i == 0 && matches!(c, '#' | ' '))
            || (i == last && c == ' ');
        if c == '\0' {
            out.push_str("\\00");
            continue;
        }
        if special {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oids_and_escapes() {
        assert_eq!(
            dotted(&[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d]),
            "1.2.840.113549"
        );
        assert_eq!(escape("a,b"), "a\\,b");
        assert_eq!(escape(" x "), "\\ x\\ ");
        assert_eq!(escape("#1"), "\\#1");
        assert_eq!(subject_of(b"\x30\x01"), None, "truncated");
        assert_eq!(subject_of(&[]), None);
    }
}
