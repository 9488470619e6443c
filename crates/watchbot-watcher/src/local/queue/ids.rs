//! Identifiers of the embedded queue: SQS-shaped message ids that sort by send time, and random receipt suffixes.

const HEX: &[u8; 16] = b"0123456789abcdef";

fn push_hex(text: &mut String, byte: u8) {
    text.push(HEX[usize::from(byte >> 4)] as char);
    text.push(HEX[usize::from(byte & 0x0f)] as char);
}

pub(super) fn random_hex(bytes: usize) -> String {
    let mut text = String::with_capacity(bytes * 2);
    (0..bytes).for_each(|_| push_hex(&mut text, fastrand::u8(..)));
    text
}

/// A version 4 UUID, the shape of SQS message ids, whose first 48 bits are the send time in milliseconds (as in a
/// version 7 UUID) and the other 74 random: ids sent later sort later, so the `id` index is appended to rather than
/// written all over (a million random ids make every send touch an uncached page of it).
pub(super) fn new_message_id(now_ms: u64) -> String {
    let mut bytes = [0u8; 16];
    fastrand::fill(&mut bytes[6..]);
    bytes[..6].copy_from_slice(&now_ms.to_be_bytes()[2..]);
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let mut id = String::with_capacity(36);
    for (index, byte) in bytes.iter().enumerate() {
        if matches!(index, 4 | 6 | 8 | 10) {
            id.push('-');
        }
        push_hex(&mut id, *byte);
    }
    id
}
