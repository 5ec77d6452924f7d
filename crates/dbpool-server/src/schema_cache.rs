//! A server's cache of encoded IPC schema messages: a statement's result has the same
//! schema on every call, and encoding it was ~8 % of the daemon's instructions per small
//! query. Sharded so that concurrent queries rarely take the same lock, and bounded per
//! shard by least-recent use, so a flood of one-off schemas evicts one entry at a time
//! instead of emptying the cache that the hot statements live in.
use crate::ipc_encode::encode_schema_message;
use arrow::datatypes::SchemaRef;
use bytes::Bytes;
use hashlink::LruCache;
use parking_lot::Mutex;
use std::hash::{BuildHasher, BuildHasherDefault, Hash, Hasher, RandomState};

/// Schemas a server keeps by default.
pub const DEFAULT_CAPACITY: usize = 1024;

/// Locks the cache is split over (at most; a smaller cache has fewer).
const SHARDS: usize = 16;

/// Encoded schema messages by schema, shared by a server's `Query` and `DoGet` calls.
pub struct SchemaMessages {
    shards: Box<[Shard]>,
    /// Hashes a schema once per lookup: the hash picks the shard and is the key's hash
    /// inside it (hashing a schema walks every field; twice was ~1 % of a small query).
    hasher: RandomState,
}

/// One lock's part of the cache.
type Shard = Mutex<LruCache<Key, Bytes, BuildHasherDefault<Hashed>>>;

/// A schema with its hash, computed once.
struct Key {
    hash: u64,
    schema: SchemaRef,
}

impl Hash for Key {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.hash);
    }
}

impl PartialEq for Key {
    fn eq(&self, other: &Self) -> bool {
        self.hash == other.hash
            && (std::sync::Arc::ptr_eq(&self.schema, &other.schema) || self.schema == other.schema)
    }
}

impl Eq for Key {}

/// The hasher of a shard: a key's hash is already a hash, taken as it is.
#[derive(Default)]
struct Hashed(u64);

impl Hasher for Hashed {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only `write_u64` is used (by `Key`); fold anything else in anyway.
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

impl Default for SchemaMessages {
    fn default() -> Self {
        Self::new(DEFAULT_CAPACITY)
    }
}

impl SchemaMessages {
    /// A cache of about `capacity` schemas (rounded up to a multiple of its shards);
    /// 0 keeps none: every message is encoded anew (one-off results such as metadata).
    pub fn new(capacity: usize) -> Self {
        let shards = capacity.min(SHARDS);
        let per_shard = capacity.div_ceil(shards.max(1));
        SchemaMessages {
            shards: (0..shards)
                .map(|_| Mutex::new(LruCache::with_hasher(per_shard, Default::default())))
                .collect(),
            hasher: RandomState::new(),
        }
    }

    /// The flatbuffer `Message` (header only, no framing) of `schema` under the default
    /// write options, from the cache or encoded now. Cloning the result is a reference
    /// count. Only for schemas without dictionary columns (see
    /// [`crate::ipc_encode::schema_has_dictionary`]).
    pub fn get(&self, schema: &SchemaRef) -> Bytes {
        if self.shards.is_empty() {
            return encode_schema_message(schema);
        }
        let key = Key {
            hash: self.hasher.hash_one(schema),
            schema: schema.clone(),
        };
        let shard = &self.shards[(key.hash % self.shards.len() as u64) as usize];
        if let Some(m) = shard.lock().get(&key) {
            return m.clone();
        }
        // Encoded outside the lock: another call may encode the same schema meanwhile,
        // and the later insert wins; both are the same bytes.
        let bytes = encode_schema_message(schema);
        shard.lock().insert(key, bytes.clone());
        bytes
    }

    /// Schemas held now.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| s.lock().len()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::datatypes::{DataType, Field, Schema};
    use std::sync::Arc;

    fn schema(name: &str) -> SchemaRef {
        Arc::new(Schema::new(vec![Field::new(name, DataType::Int64, true)]))
    }

    #[test]
    fn same_schema_gives_the_same_shared_bytes() {
        let cache = SchemaMessages::default();
        let s = schema("n");
        let a = cache.get(&s);
        // An equal schema of another Arc (a backend builds one per call) hits too.
        let b = cache.get(&schema("n"));
        assert!(!a.is_empty());
        assert_eq!(
            a.as_ptr(),
            b.as_ptr(),
            "second call must come from the cache"
        );
        let msg = arrow::ipc::root_as_message(&a).unwrap();
        let decoded =
            arrow::ipc::convert::try_fb_to_schema(msg.header_as_schema().unwrap()).unwrap();
        assert_eq!(&decoded, s.as_ref());
    }

    #[test]
    fn a_flood_of_one_off_schemas_stays_bounded_and_keeps_the_hot_one() {
        let cache = SchemaMessages::new(64);
        let hot = schema("hot");
        let first = cache.get(&hot);
        for i in 0..1_000 {
            cache.get(&schema(&format!("c{i}")));
            // The hot statement runs between the one-offs.
            assert_eq!(cache.get(&hot).as_ptr(), first.as_ptr(), "evicted at {i}");
        }
        assert!(cache.len() <= 64, "{} held", cache.len());
        assert!(
            cache.len() >= 32,
            "evicts singly, never all: {} held",
            cache.len()
        );
    }

    #[test]
    fn capacity_zero_keeps_nothing() {
        let cache = SchemaMessages::new(0);
        let s = schema("n");
        assert_eq!(cache.get(&s), cache.get(&s));
        assert_eq!(cache.len(), 0);
    }

    #[test]
    fn two_servers_do_not_share_entries() {
        let (a, b) = (SchemaMessages::default(), SchemaMessages::default());
        a.get(&schema("n"));
        assert_eq!((a.len(), b.len()), (1, 0));
    }
}
