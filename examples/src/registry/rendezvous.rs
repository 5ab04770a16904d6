//! Rendezvous hashing: the instance for a key is the one with the highest hash of
//! (key, instance id), so a key keeps its instance while that lives, and only the keys
//! of an instance that leaves move.

/// FNV-1a, 64 bits, then MurmurHash3's 64-bit finalizer (FNV alone mixes short,
/// similar strings poorly): stable across builds and platforms, so a client can
/// compute the same pick, unlike `std`'s hasher.
fn hash(parts: &[&str]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            h ^= 0xff;
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        for b in p.bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

/// The rendezvous choice for `key` among `instances`: the highest hash of (key,
/// instance id), ties broken by id.
pub fn rendezvous<'a, I>(key: &str, instances: I) -> Option<&'a str>
where
    I: IntoIterator<Item = &'a str>,
{
    instances.into_iter().max_by_key(|id| (hash(&[key, id]), *id))
}
