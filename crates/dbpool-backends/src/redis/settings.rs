//! The `settings` of a Redis pool (timeouts, TLS, TTL, SCAN size) and its command policy:
//! the denylist, and the commands that would corrupt a pooled connection.
use super::command::Command;
use dbpool_config::PoolOptions;
use dbpool_core::{Error, Result};
use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

/// Commands denied when `settings.denied_commands` is not given (docs/redis.md has the
/// reasons): whole-database wipes, server administration and debugging, replication,
/// data moved between databases or servers in serialized form, reads of other clients'
/// commands, O(N) key listing, and scripts (a script can call any command, denied or
/// not, through `redis.call`). `NAME|SUB` entries deny one subcommand only.
pub const DEFAULT_DENIED: &[&str] = &[
    // Wipes and server administration.
    "FLUSHALL",
    "FLUSHDB",
    "SWAPDB",
    "CONFIG",
    "SHUTDOWN",
    "SAVE",
    "BGSAVE",
    "BGREWRITEAOF",
    "ACL",
    "MODULE",
    "CLIENT",
    "SLOWLOG",
    "LATENCY|RESET",
    "MEMORY|PURGE",
    // Debugging.
    "DEBUG",
    "PFDEBUG",
    "PFSELFTEST",
    // Replication and clustering.
    "REPLICAOF",
    "SLAVEOF",
    "SYNC",
    "PSYNC",
    "REPLCONF",
    "FAILOVER",
    "CLUSTER",
    "SENTINEL",
    // Data moved in serialized form or into another database or server.
    "MIGRATE",
    "DUMP",
    "RESTORE",
    "RESTORE-ASKING",
    "MOVE",
    "COPY|DB",
    // O(N) over the whole keyspace: SCAN_KEYS streams it instead.
    "KEYS",
    // Scripts and functions.
    "SCRIPT",
    "FUNCTION",
    "EVAL",
    "EVALSHA",
    "EVAL_RO",
    "EVALSHA_RO",
    "FCALL",
    "FCALL_RO",
];

/// Commands that change the state of the connection itself. Connections are shared by
/// the pool, so these are refused whatever the policy says.
const CONNECTION_STATE: &[&str] = &[
    "MULTI",
    "EXEC",
    "DISCARD",
    "WATCH",
    "UNWATCH",
    "SELECT",
    "AUTH",
    "HELLO",
    "RESET",
    "QUIT",
    "MONITOR",
    "SUBSCRIBE",
    "PSUBSCRIBE",
    "SSUBSCRIBE",
    "UNSUBSCRIBE",
    "PUNSUBSCRIBE",
    "SUNSUBSCRIBE",
    "READONLY",
    "READWRITE",
    "ASKING",
    "CLIENT|REPLY",
    "CLIENT|TRACKING",
    "CLIENT|SETNAME",
];

/// Which commands a pool may run. Entries are command names or `NAME|SUBCOMMAND`
/// (Redis ACL style); the most specific entry wins, an allow beats a deny.
#[derive(Debug, Clone)]
pub struct Policy {
    denied: HashSet<String>,
    allowed: HashSet<String>,
}

impl Policy {
    /// Refuses connection-state commands (INVALID_ARGUMENT) and denied ones
    /// (PERMISSION_DENIED).
    pub fn check(&self, cmd: &Command) -> Result<()> {
        let name = cmd.name();
        let full = policy_sub(cmd, &name).map(|s| format!("{name}|{s}"));
        let is = |set: &dyn Fn(&str) -> bool| (set(&name), full.as_deref().is_some_and(set));
        let (plain, sub) = is(&|n| CONNECTION_STATE.contains(&n));
        if plain || sub {
            return Err(Error::invalid(
                "sql",
                format!(
                    "`{name}` changes the state of a pooled, shared connection; use \
                     execute_batch(transaction=true) for MULTI/EXEC"
                ),
            ));
        }
        let decision = match full.as_deref() {
            Some(f) if self.allowed.contains(f) => true,
            Some(f) if self.denied.contains(f) => false,
            _ => self.allowed.contains(&name) || !self.denied.contains(&name),
        };
        if decision {
            return Ok(());
        }
        let shown = full
            .filter(|f| self.denied.contains(f))
            .unwrap_or_else(|| name.clone());
        Err(Error::PermissionDenied(format!(
            "Redis command `{shown}` is denied on this pool (see settings.denied_commands \
             and settings.allowed_commands)"
        )))
    }
}

/// The subcommand a policy entry `NAME|SUB` matches: the second argument, except for
/// `COPY src dst … DB n`, whose `DB` option (a copy into another database) is `COPY|DB`.
fn policy_sub(cmd: &Command, name: &str) -> Option<String> {
    if name == "COPY" {
        let into_db = cmd
            .args
            .get(3..)
            .is_some_and(|rest| rest.iter().any(|a| a.eq_ignore_ascii_case(b"DB")));
        return into_db.then(|| "DB".to_string());
    }
    cmd.sub()
}

impl Policy {
    /// Checks commands the backend sends on the caller's behalf (pattern reads, bulk
    /// insert), so the denylist cannot be bypassed through them.
    pub fn check_names(&self, names: &[&str]) -> Result<()> {
        for name in names {
            self.check(&Command {
                args: vec![name.as_bytes().to_vec()],
            })?;
        }
        Ok(())
    }
}

/// Everything a Redis pool reads from its `settings` table.
#[derive(Debug, Clone)]
pub struct Settings {
    /// How long opening a connection may take.
    pub connect_timeout: Duration,
    /// How long a reply may take; `None` waits forever.
    pub response_timeout: Option<Duration>,
    /// A PEM file of CA certificates to trust for `rediss://` instead of the system's.
    pub tls_ca_file: Option<String>,
    /// TTL bulk insert puts on the keys it writes, unless the target names its own.
    pub bulk_ttl: Option<u64>,
    /// The COUNT hint of every SCAN of a pattern read.
    pub scan_count: u64,
    /// The command policy.
    pub policy: Policy,
}

const KEYS: &str = "denied_commands, allowed_commands, connect_timeout_ms, \
                    response_timeout_ms, tls_ca_file, bulk_ttl_seconds, scan_count";

impl Settings {
    /// Reads and checks the settings; an unknown key or a bad number names the key.
    pub fn parse(settings: &BTreeMap<String, String>, options: &PoolOptions) -> Result<Self> {
        for k in settings.keys() {
            if !KEYS.split(", ").any(|known| known == k.trim()) {
                return Err(Error::invalid(
                    format!("settings.{k}"),
                    format!("unknown Redis setting (expected one of {KEYS})"),
                ));
            }
        }
        let get = |k: &str| settings.get(k).map(|v| v.trim());
        let number = |k: &str| -> Result<Option<u64>> {
            get(k)
                .map(|v| {
                    v.parse::<u64>().map_err(|_| {
                        Error::invalid(format!("settings.{k}"), "must be a whole number")
                    })
                })
                .transpose()
        };
        let list = |k: &str| -> Option<HashSet<String>> {
            get(k).map(|v| {
                v.split(',')
                    .map(|s| s.trim().to_ascii_uppercase())
                    .filter(|s| !s.is_empty())
                    .collect()
            })
        };
        let denied = list("denied_commands")
            .unwrap_or_else(|| DEFAULT_DENIED.iter().map(|s| s.to_string()).collect());
        let response_ms =
            number("response_timeout_ms")?.unwrap_or(if options.statement_timeout_ms > 0 {
                options.statement_timeout_ms
            } else {
                30_000
            });
        let scan_count = number("scan_count")?.unwrap_or(1000);
        if scan_count == 0 {
            return Err(Error::invalid("settings.scan_count", "must be > 0"));
        }
        Ok(Settings {
            connect_timeout: number("connect_timeout_ms")?
                .map(Duration::from_millis)
                .unwrap_or_else(|| options.acquire_timeout().min(Duration::from_secs(10))),
            response_timeout: PoolOptions::optional(response_ms),
            tls_ca_file: get("tls_ca_file").map(str::to_string),
            bulk_ttl: number("bulk_ttl_seconds")?.filter(|t| *t > 0),
            scan_count,
            policy: Policy {
                denied,
                allowed: list("allowed_commands").unwrap_or_default(),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(pairs: &[(&str, &str)]) -> Policy {
        let map = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Settings::parse(&map, &PoolOptions::default())
            .unwrap()
            .policy
    }

    fn check(p: &Policy, line: &str) -> Result<()> {
        p.check(&Command::parse(line, Vec::new()).unwrap())
    }

    #[test]
    fn default_denylist_and_overrides() {
        let p = policy(&[]);
        assert!(matches!(
            check(&p, "flushall"),
            Err(Error::PermissionDenied(_))
        ));
        assert!(matches!(
            check(&p, "CONFIG GET x"),
            Err(Error::PermissionDenied(_))
        ));
        assert!(check(&p, "GET k").is_ok());
        assert!(matches!(
            check(&p, "MULTI"),
            Err(Error::InvalidArgument { .. })
        ));
        let p = policy(&[("allowed_commands", "keys, config|get")]);
        assert!(check(&p, "KEYS *").is_ok());
        assert!(check(&p, "CONFIG GET maxmemory").is_ok());
        assert!(matches!(
            check(&p, "CONFIG SET a b"),
            Err(Error::PermissionDenied(_))
        ));
        let p = policy(&[("denied_commands", "DEL,client|kill")]);
        assert!(check(&p, "FLUSHALL").is_ok());
        assert!(check(&p, "CLIENT LIST").is_ok());
        let e = check(&p, "client kill id 1").unwrap_err().to_string();
        assert!(e.contains("CLIENT|KILL"), "{e}");
        assert!(matches!(
            check(&p, "del k"),
            Err(Error::PermissionDenied(_))
        ));
        // Connection-state commands stay refused even when re-allowed.
        let p = policy(&[("allowed_commands", "CLIENT")]);
        assert!(matches!(
            check(&p, "CLIENT REPLY OFF"),
            Err(Error::InvalidArgument { .. })
        ));
    }

    #[test]
    fn settings_are_checked() {
        let bad = BTreeMap::from([("scan_cnt".to_string(), "5".to_string())]);
        let e = Settings::parse(&bad, &PoolOptions::default()).unwrap_err();
        assert!(matches!(&e, Error::InvalidArgument { field, .. } if field == "settings.scan_cnt"));
        let bad = BTreeMap::from([("response_timeout_ms".to_string(), "x".to_string())]);
        assert!(Settings::parse(&bad, &PoolOptions::default()).is_err());
        let off = BTreeMap::from([("response_timeout_ms".to_string(), "0".to_string())]);
        let s = Settings::parse(&off, &PoolOptions::default()).unwrap();
        assert_eq!(s.response_timeout, None);
    }
}
