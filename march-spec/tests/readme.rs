//! The README's DSL table and the vocabulary agree: every key is a row, every
//! row is a key, and each row shows the key's default.

use march_spec::keys::KEYS;

fn table() -> Vec<(Vec<String>, String)> {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md"))
        .expect("README.md beside the workspace");
    let start = readme
        .find("| key | value | default |")
        .expect("the DSL table");
    readme[start..]
        .lines()
        .skip(2)
        .take_while(|l| l.starts_with('|'))
        .map(|row| {
            let first = row.split(" | ").next().unwrap().trim_start_matches("| ");
            let keys = first
                .split(", ")
                .map(|k| k.trim_matches('`').to_string())
                .collect();
            (keys, row.to_string())
        })
        .collect()
}

#[test]
fn every_key_has_a_row_with_its_default() {
    let rows = table();
    for key in KEYS {
        let Some((_, row)) = rows
            .iter()
            .find(|(keys, _)| keys.iter().any(|k| k == key.name))
        else {
            panic!("README's DSL table has no row for `{}`", key.name);
        };
        if let Some(default) = key.default_text() {
            let default = default.replace(".0%", "%");
            let last = row.rsplit(" | ").next().unwrap();
            assert!(
                last.contains(&default),
                "`{}`: README's default column says {last:?}, the vocabulary {default:?}",
                key.name
            );
        }
    }
}

#[test]
fn every_row_is_a_key() {
    for (keys, row) in table() {
        for k in keys {
            assert!(
                KEYS.iter().any(|key| key.name == k),
                "README's DSL table lists `{k}`, which is not a key ({row})"
            );
        }
    }
}
