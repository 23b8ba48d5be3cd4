//! Regenerates the worked example of docs/FORMAT.md from the code and compares it with the
//! document, so the byte-exact description cannot drift from what the ledger writes.
//! Run with `UPDATE_FORMAT_EXAMPLE=1` to rewrite the example after a deliberate change.

mod common;

use std::fmt::Write;

use common::{key, Fixture};
use ledger::merkle::{Blake3Hasher, MerkleHasher};
use ledger::{entry, tags, KeyId, Seq};

const BEGIN: &str = "<!-- BEGIN GENERATED EXAMPLE -->\n";
const END: &str = "<!-- END GENERATED EXAMPLE -->";

fn wrapped_hex(bytes: &[u8]) -> String {
    hex::encode(bytes)
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect::<Vec<_>>()
        .join("\n")
}

fn block(out: &mut String, title: &str, body: &str) {
    writeln!(out, "{title}\n\n```text\n{body}\n```\n").unwrap();
}

fn generate() -> String {
    let f = Fixture::new();
    let agent = key(3);
    f.clock.advance(1_000_000);
    let enroll = f.enroll("enroll-ci-scanner", &agent, "ci/vuln-scanner", &["agent"]);
    f.ledger.append(vec![enroll.clone()]).remove(0).unwrap();
    let genesis = f.ledger.get(Seq(0)).unwrap().unwrap();
    let second = f.ledger.get(Seq(1)).unwrap().unwrap();
    let checkpoint = f.ledger.latest_checkpoint().unwrap();

    let mut out = String::new();
    let ledger_pub = f.ledger_key.verifying_key().to_bytes();
    let admin_pub = f.admin.verifying_key().to_bytes();
    block(
        &mut out,
        "Keys (ed25519 private keys are 32 bytes of 0x01 for the ledger key, 0x02 for the admin and 0x03 for the agent; never use such keys):",
        &format!(
            "ledger public key   {}\nledger key id       {}\nadmin public key    {}\nadmin key id        {}\nagent public key    {}\nagent key id        {}\nledger id           {}",
            hex::encode(ledger_pub),
            KeyId::of_public_key(&ledger_pub),
            hex::encode(admin_pub),
            KeyId::of_public_key(&admin_pub),
            hex::encode(agent.verifying_key().to_bytes()),
            KeyId::of_public_key(agent.verifying_key().as_bytes()),
            f.ledger.ledger_id(),
        ),
    );
    block(
        &mut out,
        "Entry 0, the genesis: its body (an `EventBody` with `genesis`, field 16):",
        &wrapped_hex(&genesis.body),
    );
    block(
        &mut out,
        "Entry 0 encoded (what sled stores and `entry_hash` covers after the tag):",
        &wrapped_hex(&genesis.encode()),
    );
    block(
        &mut out,
        "entry_hash of entry 0 = blake3(\"isms-ledger/v1/entry\\0\" || encoded entry 0):",
        &genesis.hash().to_hex(),
    );
    block(
        &mut out,
        "Entry 1: the admin enrols the agent key. Its body (`key_enrolled`, field 17):",
        &wrapped_hex(&second.body),
    );
    block(
        &mut out,
        "The admin's signature over `\"isms-ledger/v1/event\\0\" || body` (the tag alone is shown first):",
        &format!("{}\n{}", hex::encode(tags::EVENT_SIGNATURE), wrapped_hex(&second.signature)),
    );
    assert!(ed25519_dalek::Verifier::verify(
        &f.admin.verifying_key(),
        &entry::signing_input(&second.body),
        &ed25519_dalek::Signature::from_bytes(&second.signature)
    )
    .is_ok());
    block(&mut out, "Entry 1 encoded:", &wrapped_hex(&second.encode()));
    block(&mut out, "entry_hash of entry 1:", &second.hash().to_hex());
    let leaf0 = Blake3Hasher::hash_leaf(&genesis.hash().0);
    let leaf1 = Blake3Hasher::hash_leaf(&second.hash().0);
    let root = Blake3Hasher::hash_children(&leaf0, &leaf1);
    assert_eq!(root, checkpoint.checkpoint.root);
    block(
        &mut out,
        "Merkle tree of size 2: leaf = blake3(0x00 || entry_hash), root = blake3(0x01 || leaf0 || leaf1):",
        &format!("leaf 0  {}\nleaf 1  {}\nroot    {}", hex::encode(leaf0), hex::encode(leaf1), hex::encode(root)),
    );
    block(&mut out, "The checkpoint written after entry 1 (a C2SP signed note; the last line is the signature):", checkpoint.note.trim_end());
    block(
        &mut out,
        "Its verifier key (C2SP vkey form):",
        &ledger::checkpoint::verifier_key(f.ledger.origin(), &f.ledger.public_key()),
    );
    out
}

#[test]
fn format_md_example_matches_the_code() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/FORMAT.md");
    let doc = std::fs::read_to_string(&path).expect("docs/FORMAT.md");
    let start = doc.find(BEGIN).expect("FORMAT.md has the BEGIN marker") + BEGIN.len();
    let end = doc.find(END).expect("FORMAT.md has the END marker");
    let generated = generate();
    if std::env::var_os("UPDATE_FORMAT_EXAMPLE").is_some() {
        let updated = format!("{}{}{}", &doc[..start], generated, &doc[end..]);
        std::fs::write(&path, updated).unwrap();
        return;
    }
    assert_eq!(
        &doc[start..end],
        generated,
        "docs/FORMAT.md's example differs from what the code writes; if the change is deliberate, rerun with UPDATE_FORMAT_EXAMPLE=1 and bump the format version"
    );
}
