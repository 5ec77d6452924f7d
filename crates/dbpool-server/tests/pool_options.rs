//! Every pool option is everywhere: the option table of dbpool-config (`pool_options!`,
//! from which the config struct and the proto conversion are made) against the
//! `dbpool.v1.PoolOptions` message, the Python client's option lists (and its README and
//! create_pool docstring) and the pool options table of docs/configuration.md (names and
//! defaults). Adding an option to one
//! of them and not the others fails here, naming what lacks it.
use dbpool_config::PoolOptions;
use prost::Message;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn repo_file(path: &str) -> (PathBuf, String) {
    let file = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(path);
    let text = std::fs::read_to_string(&file)
        .unwrap_or_else(|e| panic!("reading {}: {e}", file.display()));
    (file, text)
}

/// The option table's names.
fn table() -> Vec<String> {
    PoolOptions::NAMES.iter().map(|n| n.to_string()).collect()
}

/// The fields of `dbpool.v1.PoolOptions`, from the descriptor set the server serves.
fn proto_fields() -> Vec<String> {
    let set = prost_types::FileDescriptorSet::decode(dbpool_proto::FILE_DESCRIPTOR_SET)
        .expect("the descriptor set decodes");
    let message = set
        .file
        .iter()
        .filter(|f| f.package() == "dbpool.v1")
        .flat_map(|f| &f.message_type)
        .find(|m| m.name() == "PoolOptions")
        .expect("dbpool.v1.PoolOptions is in the descriptor set");
    message.field.iter().map(|f| f.name().to_string()).collect()
}

/// The annotated names of a Python class body (`    name: type ...` lines).
fn python_class_fields(path: &str, class: &str) -> Vec<String> {
    let (file, text) = repo_file(path);
    let head = [format!("class {class}("), format!("class {class}:")];
    let mut lines = text
        .lines()
        .skip_while(|l| !head.iter().any(|h| l.starts_with(h)));
    assert!(
        lines.next().is_some(),
        "no class {class} in {}",
        file.display()
    );
    lines
        .take_while(|l| l.is_empty() || l.starts_with(' '))
        .filter_map(|l| l.strip_prefix("    "))
        .filter_map(|l| l.split_once(':').map(|(name, _)| name))
        .filter(|name| name.chars().all(|c| c == '_' || c.is_ascii_lowercase()))
        .filter(|name| !name.is_empty())
        .map(str::to_string)
        .collect()
}

/// `(key, default)` of each row of docs/configuration.md's pool options table.
fn documented() -> Vec<(String, String)> {
    let (_, text) = repo_file("docs/configuration.md");
    let cell = |c: &str| c.trim().trim_matches('`').to_string();
    text.lines()
        .skip_while(|l| !l.starts_with("Pool options, in the same table"))
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
        .skip(2) // the header and its rule
        .map(|row| {
            let cells: Vec<&str> = row.split('|').collect();
            (cell(cells[1]), cell(cells[2]))
        })
        .collect()
}

/// Fails naming the options `place` lacks and those it has that the table does not.
fn same_options(place: &str, names: &[String]) {
    let table: BTreeSet<_> = table().into_iter().collect();
    let found: BTreeSet<_> = names.iter().cloned().collect();
    let lacking: Vec<_> = table.difference(&found).collect();
    let unknown: Vec<_> = found.difference(&table).collect();
    assert!(
        lacking.is_empty() && unknown.is_empty(),
        "{place} lacks the pool options {lacking:?} and has {unknown:?} that \
         dbpool-config's option table (crates/dbpool-config/src/options.rs) lacks"
    );
}

#[test]
fn the_proto_has_every_option() {
    same_options("proto/dbpool/v1/pool.proto (PoolOptions)", &proto_fields());
}

#[test]
fn the_python_client_has_every_option() {
    let src = "clients/python/src/db_pool_rs";
    same_options(
        "the Python client's create_pool keywords (_options.py PoolOptionArgs)",
        &python_class_fields(&format!("{src}/_options.py"), "PoolOptionArgs"),
    );
    same_options(
        "the Python client's PoolOptions (models.py)",
        &python_class_fields(&format!("{src}/models.py"), "PoolOptions"),
    );
}

/// Fails naming the options that are not a word of `text`.
fn names_every_option(place: &str, text: &str) {
    let words: BTreeSet<&str> = text
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .collect();
    let lacking: Vec<_> = PoolOptions::NAMES
        .iter()
        .filter(|n| !words.contains(*n))
        .collect();
    assert!(lacking.is_empty(), "{place} does not name {lacking:?}");
}

#[test]
fn the_python_docs_name_every_option() {
    let (_, readme) = repo_file("clients/python/README.md");
    let row = readme.lines().find(|l| l.starts_with("| `create_pool("));
    names_every_option(
        "clients/python/README.md (the create_pool row)",
        row.expect("README.md has a create_pool row"),
    );
    let (_, sync) = repo_file("clients/python/src/db_pool_rs/sync_client.py");
    let doc = sync
        .split("def create_pool(")
        .nth(1)
        .and_then(|rest| rest.split("\"\"\"").nth(1));
    names_every_option(
        "SyncDatabasePool.create_pool's docstring",
        doc.expect("create_pool has a docstring"),
    );
}

#[test]
fn the_docs_have_every_option_with_its_default() {
    let docs = documented();
    let names: Vec<String> = docs.iter().map(|(n, _)| n.clone()).collect();
    same_options("docs/configuration.md (pool options table)", &names);
    for (name, default) in PoolOptions::default().entries() {
        let written = &docs
            .iter()
            .find(|(n, _)| n == name)
            .expect("checked above")
            .1;
        assert_eq!(
            written, &default,
            "docs/configuration.md gives `{name}` the default {written}, the config {default}"
        );
    }
}

#[test]
fn the_config_file_takes_every_option_as_the_docs_write_it() {
    let mut toml = String::from("[pools.p]\nurl = \"sqlite::memory:\"\n");
    for (name, default) in PoolOptions::default().entries() {
        toml.push_str(&format!("{name} = {default}\n"));
    }
    let cfg = dbpool_config::load_str(&toml, "options.toml").expect(&toml);
    assert_eq!(cfg.pools["p"].options, PoolOptions::default());
}
