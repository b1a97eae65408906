//! Salesforce record ids: the 15-character form, the 3-character case-safe
//! suffix that makes the 18-character form, and the canonical form used for
//! storage and comparison.

/// Alphabet of the case-safe suffix: one character per 5-bit uppercase mask.
const SUFFIX_ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ012345";
const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// The 3-character suffix of a 15-character id: for each block of five
/// characters, a bit per uppercase letter, looked up in `SUFFIX_ALPHABET`.
pub fn checksum(id15: &str) -> Option<String> {
    let bytes = id15.as_bytes();
    if bytes.len() != 15 || !bytes.iter().all(u8::is_ascii_alphanumeric) {
        return None;
    }
    let mut out = String::with_capacity(3);
    for block in bytes.chunks(5) {
        let mask = block
            .iter()
            .enumerate()
            .filter(|(_, b)| b.is_ascii_uppercase())
            .fold(0usize, |m, (i, _)| m | (1 << i));
        out.push(SUFFIX_ALPHABET[mask] as char);
    }
    Some(out)
}

/// The 18-character id for a 15-character one.
pub fn to_18(id15: &str) -> Option<String> {
    checksum(id15).map(|suffix| format!("{id15}{suffix}"))
}

/// The stored form of an id as a client may write it: a 15-character id gets
/// its suffix; an 18-character id is case-insensitive, so the case of its
/// first 15 characters is restored from the suffix. `None` when the text is
/// not an id at all (wrong length, bad characters, inconsistent suffix).
pub fn canonical(text: &str) -> Option<String> {
    match text.len() {
        15 => to_18(text),
        18 => {
            let (head, suffix) = text.split_at(15);
            let mut restored: Vec<u8> = head.as_bytes().to_vec();
            for (block, s) in suffix.bytes().enumerate() {
                let mask = SUFFIX_ALPHABET
                    .iter()
                    .position(|c| *c == s.to_ascii_uppercase())?;
                for (i, b) in restored[block * 5..block * 5 + 5].iter_mut().enumerate() {
                    if mask & (1 << i) != 0 {
                        if !b.is_ascii_alphabetic() {
                            return None;
                        }
                        *b = b.to_ascii_uppercase();
                    } else {
                        *b = b.to_ascii_lowercase();
                    }
                }
            }
            let head = String::from_utf8(restored).ok()?;
            to_18(&head)
        }
        _ => None,
    }
}

/// `n` in base 62, left-padded with zeros to `width` characters.
pub fn base62(mut n: u64, width: usize) -> String {
    let mut digits = vec![b'0'; width];
    for slot in digits.iter_mut().rev() {
        *slot = BASE62[(n % 62) as usize];
        n /= 62;
    }
    String::from_utf8(digits).unwrap_or_default()
}

/// An 18-character id: 3-character key prefix, 2-character pod of the org,
/// a reserved `0`, and 9 base-62 digits of `seq`.
pub fn make_id(key_prefix: &str, pod: &str, seq: u64) -> String {
    let id15 = format!("{key_prefix}{pod}0{}", base62(seq, 9));
    to_18(&id15).unwrap_or(id15)
}

/// Sequence number of the `i`-th record of an object; spread out so that ids
/// do not look like a plain counter, and never colliding.
pub fn seq_for_index(i: usize) -> u64 {
    1_000_000 + (i as u64) * 37
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_matches_salesforce_examples() {
        assert_eq!(
            to_18("00300000003T2PG").as_deref(),
            Some("00300000003T2PGAA0")
        );
        assert_eq!(
            to_18("0015800001ZD7pD").as_deref(),
            Some("0015800001ZD7pDAAT")
        );
        assert_eq!(checksum("short"), None);
    }

    #[test]
    fn canonical_restores_case_and_extends() {
        assert_eq!(
            canonical("0015800001zd7pdaat").as_deref(),
            Some("0015800001ZD7pDAAT")
        );
        assert_eq!(
            canonical("0015800001ZD7pD").as_deref(),
            Some("0015800001ZD7pDAAT")
        );
        assert_eq!(canonical("not-an-id"), None);
        assert_eq!(canonical("0015800001ZD7p!AAT"), None);
    }

    #[test]
    fn made_ids_are_canonical_and_distinct() {
        let a = make_id("003", "5g", seq_for_index(0));
        let b = make_id("003", "5g", seq_for_index(1));
        assert_eq!(a.len(), 18);
        assert_ne!(a, b);
        assert_eq!(canonical(&a.to_lowercase()).as_deref(), Some(a.as_str()));
    }
}
