//! Integration tests of `ledger::merkle`: published RFC 6962 SHA-256 vectors, BLAKE3 round trips against a naive reference, forgery refusal, and proof cost.

use std::time::{Duration, Instant};

use ledger::merkle::{
    consistency_proof, consistency_proof_len, inclusion_proof, inclusion_proof_len, root_at,
    root_from_inclusion_proof, root_from_leaves, verify_consistency, verify_inclusion,
    Blake3Hasher, BuildError, CountingSource, Frontier, Hash, MemoryNodes, MerkleHasher,
    MissingNode, NewNode, NodeSource, ProofError, Sha256Hasher,
};
use proptest::prelude::*;
use serde::Deserialize;

// ---------------------------------------------------------------------------------------------
// Shared helpers.
// ---------------------------------------------------------------------------------------------

/// Decodes a 32-byte hash from hex, panicking on malformed vector data.
fn hash_hex(s: &str) -> Hash {
    hex::decode(s)
        .expect("vector hash is hex")
        .try_into()
        .expect("vector hash is 32 bytes")
}

/// Distinct leaf data, so that no two leaves (and hence no two proofs for different indices) can
/// coincide by accident.
fn leaf_data(count: usize) -> Vec<Vec<u8>> {
    (0..count)
        .map(|i| format!("evidence record {i}").into_bytes())
        .collect()
}

/// Borrows owned leaves as the slice of slices `root_from_leaves` takes.
fn as_slices(leaves: &[Vec<u8>]) -> Vec<&[u8]> {
    leaves.iter().map(Vec::as_slice).collect()
}

/// The largest power of two strictly below `n` (`n >= 2`), written independently of the library.
fn split(n: usize) -> usize {
    let mut k = 1;
    while k * 2 < n {
        k *= 2;
    }
    k
}

/// `PATH(m, D[n])` straight from the recursive definition in RFC 9162 §2.1.3.1, over raw leaves.
fn reference_path<H: MerkleHasher>(m: usize, leaves: &[&[u8]]) -> Vec<Hash> {
    let n = leaves.len();
    if n == 1 {
        return Vec::new();
    }
    let k = split(n);
    if m < k {
        let mut path = reference_path::<H>(m, &leaves[..k]);
        path.push(root_from_leaves::<H>(&leaves[k..]));
        path
    } else {
        let mut path = reference_path::<H>(m - k, &leaves[k..]);
        path.push(root_from_leaves::<H>(&leaves[..k]));
        path
    }
}

/// `SUBPROOF(m, D[n], b)` straight from the recursive definition in RFC 9162 §2.1.4.1.
fn reference_subproof<H: MerkleHasher>(m: usize, leaves: &[&[u8]], whole: bool) -> Vec<Hash> {
    let n = leaves.len();
    if m == n {
        return if whole {
            Vec::new()
        } else {
            vec![root_from_leaves::<H>(leaves)]
        };
    }
    let k = split(n);
    if m <= k {
        let mut proof = reference_subproof::<H>(m, &leaves[..k], whole);
        proof.push(root_from_leaves::<H>(&leaves[k..]));
        proof
    } else {
        let mut proof = reference_subproof::<H>(m - k, &leaves[k..], false);
        proof.push(root_from_leaves::<H>(&leaves[..k]));
        proof
    }
}

/// `PROOF(m, D[n])`, which RFC 9162 defines for `0 < m < n`; the library returns an empty proof
/// for the trivial cases, and so does this reference.
fn reference_consistency<H: MerkleHasher>(m: usize, leaves: &[&[u8]]) -> Vec<Hash> {
    if m == 0 || m == leaves.len() {
        Vec::new()
    } else {
        reference_subproof::<H>(m, leaves, true)
    }
}

/// Builds the store and the frontier after each prefix (index `k` holds the frontier of `k`
/// leaves), pushing the leaves one at a time.
fn build<H: MerkleHasher>(leaves: &[Vec<u8>]) -> (MemoryNodes, Vec<Frontier>) {
    let mut store = MemoryNodes::new();
    let mut frontier = Frontier::new();
    let mut frontiers = vec![frontier.clone()];
    for leaf in leaves {
        store.extend(frontier.push::<H>(leaf));
        frontiers.push(frontier.clone());
    }
    (store, frontiers)
}

/// The (inner, border) split of the audit path of leaf `index` in a tree of `size` leaves: the
/// levels below the point where the path leaves the last leaf's path, and the left subtrees above
/// it. Sizes with the same split hash a proof the same way.
fn path_split(index: u64, size: u64) -> (u32, u32) {
    let inner = u64::BITS - (index ^ (size - 1)).leading_zeros();
    let border = index.checked_shr(inner).unwrap_or(0).count_ones();
    (inner, border)
}

/// Flips one bit of byte `byte` of hash `i` of `proof`.
fn flipped(proof: &[Hash], i: usize, byte: usize) -> Vec<Hash> {
    let mut forged = proof.to_vec();
    forged[i][byte] ^= 0x10;
    forged
}

// ---------------------------------------------------------------------------------------------
// 1. Published RFC 6962 SHA-256 vectors (transparency-dev/merkle; see tests/data).
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Deserialize)]
struct Vectors {
    empty_root: String,
    leaves: Vec<String>,
    node_hashes: Vec<Vec<String>>,
    roots: Vec<String>,
    compact_trees: Vec<Vec<(u8, u64)>>,
    inclusion: Vec<InclusionVector>,
    consistency: Vec<ConsistencyVector>,
    inclusion_shapes: Vec<InclusionShape>,
    inclusion_errors: Vec<InclusionShape>,
    consistency_shapes: Vec<ConsistencyShape>,
    consistency_errors: Vec<ConsistencyShape>,
}

#[derive(Debug, Deserialize)]
struct InclusionVector {
    index: u64,
    size: u64,
    proof: Vec<String>,
}

#[derive(Debug, Deserialize)]
struct ConsistencyVector {
    old_size: u64,
    new_size: u64,
    proof: Vec<String>,
}

#[derive(Debug, Deserialize)]
struct InclusionShape {
    index: u64,
    size: u64,
    #[serde(default)]
    proof: Vec<ShapeElement>,
}

#[derive(Debug, Deserialize)]
struct ConsistencyShape {
    old_size: u64,
    new_size: u64,
    #[serde(default)]
    proof: Vec<ShapeElement>,
}

/// One proof element of the published proof shapes: a stored node, or a group of stored nodes
/// that the proof hashes together (the Go `rehash` ranges).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum ShapeElement {
    Node(u8, u64),
    Rehash { rehash: Vec<(u8, u64)> },
}

impl Vectors {
    fn load() -> Self {
        serde_json::from_str(include_str!("data/rfc6962_sha256.json")).expect("vector file parses")
    }

    fn leaves(&self) -> Vec<Vec<u8>> {
        self.leaves
            .iter()
            .map(|l| hex::decode(l).expect("leaf is hex"))
            .collect()
    }

    fn root(&self, size: u64) -> Hash {
        hash_hex(&self.roots[size as usize])
    }
}

/// Resolves a published proof shape to hashes, reading nodes from `store`.
fn resolve_shape<H: MerkleHasher>(store: &MemoryNodes, shape: &[ShapeElement]) -> Vec<Hash> {
    let node = |(level, index): (u8, u64)| store.node(level, index).expect("shape node is stored");
    shape
        .iter()
        .map(|element| match element {
            ShapeElement::Node(level, index) => node((*level, *index)),
            ShapeElement::Rehash { rehash } => {
                // The Go code folds a rehash group as acc = ids[0], acc = H(ids[i], acc): each later
                // node is a larger subtree to the left of the accumulated right part.
                let mut ids = rehash.iter().copied();
                let first = node(ids.next().expect("rehash group is not empty"));
                ids.fold(first, |acc, id| H::hash_children(&node(id), &acc))
            }
        })
        .collect()
}

#[test]
fn kat_empty_root() {
    let vectors = Vectors::load();
    let empty = hash_hex(&vectors.empty_root);
    assert_eq!(Sha256Hasher::empty_root(), empty);
    assert_eq!(root_from_leaves::<Sha256Hasher>(&[]), empty);
    assert_eq!(Frontier::new().root::<Sha256Hasher>(), empty);
    assert_eq!(
        root_at::<Sha256Hasher, _>(&MemoryNodes::new(), 0),
        Ok(empty)
    );
    assert_eq!(vectors.root(0), empty);
}

#[test]
fn kat_roots_of_every_size() {
    let vectors = Vectors::load();
    let leaves = vectors.leaves();
    let (store, frontiers) = build::<Sha256Hasher>(&leaves);
    for size in 0..=leaves.len() {
        let want = vectors.root(size as u64);
        assert_eq!(
            root_from_leaves::<Sha256Hasher>(&as_slices(&leaves[..size])),
            want,
            "root_from_leaves, size {size}"
        );
        assert_eq!(
            frontiers[size].root::<Sha256Hasher>(),
            want,
            "frontier, size {size}"
        );
        assert_eq!(
            root_at::<Sha256Hasher, _>(&store, size as u64),
            Ok(want),
            "root_at, size {size}"
        );
    }
}

#[test]
fn kat_node_hashes_and_compact_trees() {
    let vectors = Vectors::load();
    let leaves = vectors.leaves();
    let mut frontier = Frontier::new();
    let mut created: Vec<NewNode> = Vec::new();
    for (size, leaf) in leaves.iter().enumerate() {
        // The frontier before each push must be the published compact tree of that size.
        let want: Vec<Hash> = vectors.compact_trees[size]
            .iter()
            .map(|&(level, index)| hash_hex(&vectors.node_hashes[level as usize][index as usize]))
            .collect();
        assert_eq!(
            frontier.nodes(),
            want.as_slice(),
            "compact tree, size {size}"
        );
        created.extend(frontier.push::<Sha256Hasher>(leaf));
    }
    let want: Vec<Hash> = vectors.compact_trees[leaves.len()]
        .iter()
        .map(|&(level, index)| hash_hex(&vectors.node_hashes[level as usize][index as usize]))
        .collect();
    assert_eq!(frontier.nodes(), want.as_slice());

    // Pushing reports every published node exactly once, with the published hash.
    let published: usize = vectors.node_hashes.iter().map(Vec::len).sum();
    assert_eq!(created.len(), published);
    for node in &created {
        assert_eq!(
            node.hash,
            hash_hex(&vectors.node_hashes[node.level as usize][node.index as usize]),
            "node ({}, {})",
            node.level,
            node.index
        );
    }
}

#[test]
fn kat_inclusion_proofs() {
    let vectors = Vectors::load();
    let leaves = vectors.leaves();
    let (store, _) = build::<Sha256Hasher>(&leaves);
    for v in &vectors.inclusion {
        let want: Vec<Hash> = v.proof.iter().map(|h| hash_hex(h)).collect();
        let got = inclusion_proof::<Sha256Hasher, _>(&store, v.index, v.size).unwrap();
        assert_eq!(
            got, want,
            "generated proof for leaf {} of {}",
            v.index, v.size
        );
        let leaf_hash = Sha256Hasher::hash_leaf(&leaves[v.index as usize]);
        let root = vectors.root(v.size);
        assert_eq!(
            root_from_inclusion_proof::<Sha256Hasher>(&leaf_hash, v.index, v.size, &want),
            Ok(root)
        );
        verify_inclusion::<Sha256Hasher>(&leaf_hash, v.index, v.size, &want, &root)
            .unwrap_or_else(|e| panic!("leaf {} of {}: {e}", v.index, v.size));
    }
}

#[test]
fn kat_consistency_proofs() {
    let vectors = Vectors::load();
    let (store, _) = build::<Sha256Hasher>(&vectors.leaves());
    for v in &vectors.consistency {
        let want: Vec<Hash> = v.proof.iter().map(|h| hash_hex(h)).collect();
        let got = consistency_proof::<Sha256Hasher, _>(&store, v.old_size, v.new_size).unwrap();
        assert_eq!(
            got, want,
            "generated proof {} -> {}",
            v.old_size, v.new_size
        );
        verify_consistency::<Sha256Hasher>(
            v.old_size,
            v.new_size,
            &vectors.root(v.old_size),
            &vectors.root(v.new_size),
            &want,
        )
        .unwrap_or_else(|e| panic!("{} -> {}: {e}", v.old_size, v.new_size));
    }
}

/// The published proof shapes, checked in a 95-leaf tree whose first 8 leaves are the standard
/// ones: proofs for smaller trees must come out of a bigger stored tree.
#[test]
fn kat_proof_shapes() {
    let vectors = Vectors::load();
    let mut leaves = vectors.leaves();
    leaves.extend((8..95).map(|i| format!("leaf {i}").into_bytes()));
    let (store, frontiers) = build::<Sha256Hasher>(&leaves);
    for shape in &vectors.inclusion_shapes {
        let want = resolve_shape::<Sha256Hasher>(&store, &shape.proof);
        let got = inclusion_proof::<Sha256Hasher, _>(&store, shape.index, shape.size).unwrap();
        assert_eq!(
            got, want,
            "inclusion shape {} of {}",
            shape.index, shape.size
        );
        let leaf_hash = Sha256Hasher::hash_leaf(&leaves[shape.index as usize]);
        let root = frontiers[shape.size as usize].root::<Sha256Hasher>();
        verify_inclusion::<Sha256Hasher>(&leaf_hash, shape.index, shape.size, &got, &root).unwrap();
    }
    for shape in &vectors.consistency_shapes {
        let want = resolve_shape::<Sha256Hasher>(&store, &shape.proof);
        let got =
            consistency_proof::<Sha256Hasher, _>(&store, shape.old_size, shape.new_size).unwrap();
        assert_eq!(
            got, want,
            "consistency shape {} -> {}",
            shape.old_size, shape.new_size
        );
        let old_root = frontiers[shape.old_size as usize].root::<Sha256Hasher>();
        let new_root = frontiers[shape.new_size as usize].root::<Sha256Hasher>();
        verify_consistency::<Sha256Hasher>(
            shape.old_size,
            shape.new_size,
            &old_root,
            &new_root,
            &got,
        )
        .unwrap();
    }
}

#[test]
fn kat_invalid_requests() {
    let vectors = Vectors::load();
    let (store, _) = build::<Sha256Hasher>(&vectors.leaves());
    for e in &vectors.inclusion_errors {
        let want = ProofError::IndexOutOfRange {
            index: e.index,
            size: e.size,
        };
        assert!(matches!(
            inclusion_proof::<Sha256Hasher, _>(&store, e.index, e.size),
            Err(BuildError::Proof(ref err)) if *err == want
        ));
        assert_eq!(
            verify_inclusion::<Sha256Hasher>(&[0; 32], e.index, e.size, &[], &[0; 32]),
            Err(want)
        );
    }
    for e in &vectors.consistency_errors {
        let want = ProofError::InvalidSizes {
            old: e.old_size,
            new: e.new_size,
        };
        assert!(matches!(
            consistency_proof::<Sha256Hasher, _>(&store, e.old_size, e.new_size),
            Err(BuildError::Proof(ref err)) if *err == want
        ));
        assert_eq!(
            verify_consistency::<Sha256Hasher>(e.old_size, e.new_size, &[0; 32], &[0; 32], &[]),
            Err(want)
        );
    }
}

/// The corruption probes of transparency-dev's `proof/verify_test.go`, applied to the published
/// proofs: every one must be refused.
#[test]
fn kat_corrupted_published_proofs_are_refused() {
    let vectors = Vectors::load();
    let leaves = vectors.leaves();
    let some_hash = hash_hex("abacaba000000000000000000000000000000000000000000060061e00123456");
    let empty = hash_hex(&vectors.empty_root);
    for v in vectors.inclusion.iter().filter(|v| !v.proof.is_empty()) {
        let proof: Vec<Hash> = v.proof.iter().map(|h| hash_hex(h)).collect();
        let (i, n) = (v.index, v.size);
        let leaf = Sha256Hasher::hash_leaf(&leaves[i as usize]);
        let root = vectors.root(n);
        let mut probes: Vec<(u64, u64, Hash, Hash, Vec<Hash>)> = vec![
            (i.wrapping_sub(1), n, leaf, root, proof.clone()),
            (i + 1, n, leaf, root, proof.clone()),
            (i ^ 2, n, leaf, root, proof.clone()),
            (i, n * 2, leaf, root, proof.clone()),
            (i, n / 2, leaf, root, proof.clone()),
            (
                i,
                n,
                Sha256Hasher::hash_leaf(b"WrongLeaf"),
                root,
                proof.clone(),
            ),
            (i, n, leaf, empty, proof.clone()),
            (i, n, leaf, some_hash, proof.clone()),
            (i, n, leaf, root, [proof.clone(), vec![root]].concat()),
            (i, n, leaf, root, [vec![root], proof.clone()].concat()),
            (i, n, leaf, root, proof[..proof.len() - 1].to_vec()),
        ];
        for k in 0..proof.len() {
            probes.push((i, n, leaf, root, flipped(&proof, k, 0)));
        }
        if proof.len() > 1 {
            let inserted = [&proof[..1], &[some_hash], &proof[1..]].concat();
            probes.push((i, n, leaf, root, inserted));
        }
        for (index, size, leaf, root, proof) in probes {
            assert!(
                verify_inclusion::<Sha256Hasher>(&leaf, index, size, &proof, &root).is_err(),
                "accepted a corrupted proof for leaf {index} of {size}"
            );
        }
    }
    for v in vectors.consistency.iter().filter(|v| !v.proof.is_empty()) {
        let proof: Vec<Hash> = v.proof.iter().map(|h| hash_hex(h)).collect();
        let (m, n) = (v.old_size, v.new_size);
        let (r1, r2) = (vectors.root(m), vectors.root(n));
        let mut probes: Vec<(u64, u64, Hash, Hash, Vec<Hash>)> = vec![
            (m - 1, n, r1, r2, proof.clone()),
            (m + 1, n, r1, r2, proof.clone()),
            (m ^ 2, n, r1, r2, proof.clone()),
            (m, n * 2, r1, r2, proof.clone()),
            (m, n / 2, r1, r2, proof.clone()),
            (m, n, some_hash, r2, proof.clone()),
            (m, n, r1, some_hash, proof.clone()),
            (m, n, r2, r1, proof.clone()),
            (m, n, r1, r2, Vec::new()),
            (m, n, r1, r2, [proof.clone(), vec![r1]].concat()),
            (m, n, r1, r2, [proof.clone(), vec![r2]].concat()),
            (m, n, r1, r2, [vec![r1], proof.clone()].concat()),
            (m, n, r1, r2, [vec![r2], proof.clone()].concat()),
            (m, n, r1, r2, [vec![proof[0]], proof.clone()].concat()),
            (m, n, r1, r2, proof[..proof.len() - 1].to_vec()),
        ];
        for k in 0..proof.len() {
            probes.push((m, n, r1, r2, flipped(&proof, k, 0)));
        }
        for (old, new, r1, r2, proof) in probes {
            assert!(
                verify_consistency::<Sha256Hasher>(old, new, &r1, &r2, &proof).is_err(),
                "accepted a corrupted consistency proof {old} -> {new}"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// 2. BLAKE3 round trips against the naive reference.
// ---------------------------------------------------------------------------------------------

/// Every size, index and size pair up to 64 leaves: roots, frontiers, and proofs equal the RFC's
/// recursive definitions and verify.
#[test]
fn exhaustive_small_trees() {
    type H = Blake3Hasher;
    const N: usize = 64;
    let leaves = leaf_data(N);
    let slices = as_slices(&leaves);
    let (store, frontiers) = build::<H>(&leaves);
    let roots: Vec<Hash> = (0..=N)
        .map(|k| root_from_leaves::<H>(&slices[..k]))
        .collect();
    for k in 0..=N {
        let size = k as u64;
        assert_eq!(
            frontiers[k].root::<H>(),
            roots[k],
            "frontier root, size {k}"
        );
        assert_eq!(
            root_at::<H, _>(&store, size),
            Ok(roots[k]),
            "root_at, size {k}"
        );
        assert_eq!(
            Frontier::load(&store, size),
            Ok(frontiers[k].clone()),
            "load {k}"
        );
        for (m, leaf) in leaves[..k].iter().enumerate() {
            let proof = inclusion_proof::<H, _>(&store, m as u64, size).unwrap();
            assert_eq!(
                proof,
                reference_path::<H>(m, &slices[..k]),
                "PATH({m}, D[{k}])"
            );
            assert_eq!(inclusion_proof_len(m as u64, size), Ok(proof.len()));
            verify_inclusion::<H>(&H::hash_leaf(leaf), m as u64, size, &proof, &roots[k])
                .unwrap_or_else(|e| panic!("leaf {m} of {k}: {e}"));
        }
        for m in 0..=k {
            let proof = consistency_proof::<H, _>(&store, m as u64, size).unwrap();
            assert_eq!(
                proof,
                reference_consistency::<H>(m, &slices[..k]),
                "PROOF({m}, D[{k}])"
            );
            assert_eq!(consistency_proof_len(m as u64, size), Ok(proof.len()));
            verify_consistency::<H>(m as u64, size, &roots[m], &roots[k], &proof)
                .unwrap_or_else(|e| panic!("{m} -> {k}: {e}"));
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Random trees of up to 300 leaves, read back at a random past size from the full store.
    #[test]
    fn random_trees_round_trip(
        n in 1usize..=300,
        seed in any::<u64>(),
        past in any::<prop::sample::Index>(),
        samples in prop::collection::vec(any::<prop::sample::Index>(), 6),
    ) {
        type H = Blake3Hasher;
        let leaves: Vec<Vec<u8>> = (0..n)
            .map(|i| [seed.to_le_bytes().as_slice(), &(i as u64).to_le_bytes()].concat())
            .collect();
        let slices = as_slices(&leaves);
        let (store, frontiers) = build::<H>(&leaves);
        prop_assert_eq!(frontiers[n].root::<H>(), root_from_leaves::<H>(&slices));

        let roots: Vec<Hash> = (0..=n).map(|k| root_from_leaves::<H>(&slices[..k])).collect();
        for (k, root) in roots.iter().enumerate() {
            prop_assert_eq!(root_at::<H, _>(&store, k as u64), Ok(*root));
            prop_assert_eq!(&Frontier::load(&store, k as u64).unwrap(), &frontiers[k]);
        }

        // A past size of the tree, so proofs come from a store that has grown beyond it.
        let k = past.index(n) + 1;
        for (m, leaf) in leaves[..k].iter().enumerate() {
            let proof = inclusion_proof::<H, _>(&store, m as u64, k as u64).unwrap();
            prop_assert!(verify_inclusion::<H>(
                &H::hash_leaf(leaf), m as u64, k as u64, &proof, &roots[k]
            ).is_ok(), "leaf {} of {}", m, k);
        }
        for m in 0..=k {
            let proof = consistency_proof::<H, _>(&store, m as u64, k as u64).unwrap();
            prop_assert!(
                verify_consistency::<H>(m as u64, k as u64, &roots[m], &roots[k], &proof).is_ok(),
                "{} -> {}", m, k
            );
        }
        // A few indices and size pairs are also compared with the RFC's recursive definitions,
        // which are too slow to run for all of them.
        for sample in &samples {
            let m = sample.index(k);
            prop_assert_eq!(
                inclusion_proof::<H, _>(&store, m as u64, k as u64).unwrap(),
                reference_path::<H>(m, &slices[..k])
            );
            let old = sample.index(k + 1);
            prop_assert_eq!(
                consistency_proof::<H, _>(&store, old as u64, k as u64).unwrap(),
                reference_consistency::<H>(old, &slices[..k])
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// 3. Forgery.
// ---------------------------------------------------------------------------------------------

/// Every kind of tampering with an inclusion proof is refused with the variant that names it.
#[test]
fn forged_inclusion_proofs_are_refused() {
    type H = Blake3Hasher;
    for n in [1usize, 2, 3, 7, 8, 13, 37] {
        let leaves = leaf_data(n);
        let (store, frontiers) = build::<H>(&leaves);
        let size = n as u64;
        let root = frontiers[n].root::<H>();
        for (m, data) in leaves.iter().enumerate() {
            let index = m as u64;
            let leaf = H::hash_leaf(data);
            let proof = inclusion_proof::<H, _>(&store, index, size).unwrap();
            let len = proof.len();
            let mismatch = |got: Result<(), ProofError>| matches!(got, Err(ProofError::MismatchedRoot { expected, .. }) if expected == root);

            for i in 0..len {
                for byte in 0..32 {
                    let forged = flipped(&proof, i, byte);
                    assert!(
                        mismatch(verify_inclusion::<H>(&leaf, index, size, &forged, &root)),
                        "flip {i}/{byte} of leaf {m} of {n}"
                    );
                }
            }
            if len > 0 {
                for dropped in [0, len - 1] {
                    let mut forged = proof.clone();
                    forged.remove(dropped);
                    assert_eq!(
                        verify_inclusion::<H>(&leaf, index, size, &forged, &root),
                        Err(ProofError::WrongProofLength {
                            expected: len,
                            got: len - 1
                        })
                    );
                }
            }
            for extra in [[0u8; 32], root, leaf] {
                for forged in [
                    [proof.clone(), vec![extra]].concat(),
                    [vec![extra], proof.clone()].concat(),
                ] {
                    assert_eq!(
                        verify_inclusion::<H>(&leaf, index, size, &forged, &root),
                        Err(ProofError::WrongProofLength {
                            expected: len,
                            got: len + 1
                        })
                    );
                }
            }

            // Every other index: a different path length is caught by length, an equal one by the
            // root, and one past the end by range.
            for other in (0..=size).filter(|&j| j != index) {
                let got = verify_inclusion::<H>(&leaf, other, size, &proof, &root);
                match inclusion_proof_len(other, size) {
                    Err(e) => assert_eq!(got, Err(e)),
                    Ok(l) if l != len => assert_eq!(
                        got,
                        Err(ProofError::WrongProofLength {
                            expected: l,
                            got: len
                        })
                    ),
                    Ok(_) => assert!(mismatch(got), "index {other} for leaf {m} of {n}"),
                }
            }
            // Every other size up to twice the tree.
            for other in (0..=2 * size).filter(|&s| s != size) {
                let got = verify_inclusion::<H>(&leaf, index, other, &proof, &root);
                match inclusion_proof_len(index, other) {
                    Err(e) => {
                        assert_eq!(e, ProofError::IndexOutOfRange { index, size: other });
                        assert_eq!(got, Err(e));
                    }
                    Ok(l) if l != len => assert_eq!(
                        got,
                        Err(ProofError::WrongProofLength {
                            expected: l,
                            got: len
                        })
                    ),
                    // Sizes whose path has the same split hash the proof identically, so the
                    // proof alone cannot tell them apart; the signed checkpoint binds the size to
                    // the root.
                    Ok(_) if path_split(index, other) == path_split(index, size) => {
                        assert_eq!(got, Ok(()), "size {other} for leaf {m} of {n}")
                    }
                    Ok(_) => assert!(mismatch(got), "size {other} for leaf {m} of {n}"),
                }
            }
            // A wrong root names both roots; a wrong leaf leads to some other root.
            for smaller in &frontiers[..n] {
                let wrong = smaller.root::<H>();
                assert_eq!(
                    verify_inclusion::<H>(&leaf, index, size, &proof, &wrong),
                    Err(ProofError::MismatchedRoot {
                        expected: wrong,
                        got: root
                    })
                );
            }
            let other_leaf = H::hash_leaf(b"not in the tree");
            assert!(mismatch(verify_inclusion::<H>(
                &other_leaf,
                index,
                size,
                &proof,
                &root
            )));
        }
    }
}

/// Every kind of tampering with a consistency proof is refused with the variant that names it.
#[test]
fn forged_consistency_proofs_are_refused() {
    type H = Blake3Hasher;
    let n = 37usize;
    let leaves = leaf_data(n);
    let (store, frontiers) = build::<H>(&leaves);
    let roots: Vec<Hash> = frontiers.iter().map(Frontier::root::<H>).collect();
    let is_root_mismatch = |got: &Result<(), ProofError>| {
        matches!(
            got,
            Err(ProofError::MismatchedRoot { .. } | ProofError::MismatchedOldRoot { .. })
        )
    };
    for new in 1..=n {
        for old in 1..new {
            let (o, s) = (old as u64, new as u64);
            let proof = consistency_proof::<H, _>(&store, o, s).unwrap();
            let len = proof.len();
            let check = |o: u64, s: u64, r1: &Hash, r2: &Hash, p: &[Hash]| {
                verify_consistency::<H>(o, s, r1, r2, p)
            };
            assert_eq!(check(o, s, &roots[old], &roots[new], &proof), Ok(()));

            // Any flipped byte breaks the old root, the new root, or both.
            for i in 0..len {
                for byte in [0, 13, 31] {
                    let got = check(o, s, &roots[old], &roots[new], &flipped(&proof, i, byte));
                    assert!(
                        is_root_mismatch(&got),
                        "flip {i}/{byte}, {old} -> {new}: {got:?}"
                    );
                }
            }
            // Dropped, appended and prepended hashes are caught by length.
            for forged in [
                proof[1..].to_vec(),
                proof[..len - 1].to_vec(),
                Vec::new(),
                [proof.clone(), vec![roots[old]]].concat(),
                [vec![roots[new]], proof.clone()].concat(),
                [vec![proof[0]], proof.clone()].concat(),
            ] {
                assert_eq!(
                    check(o, s, &roots[old], &roots[new], &forged),
                    Err(ProofError::WrongProofLength {
                        expected: len,
                        got: forged.len()
                    })
                );
            }
            // A wrong new root names both roots. A wrong old root is caught on the old root,
            // except when the old tree is a perfect subtree: its root is then the seed of the
            // proof, so the forgery surfaces as a wrong new root.
            let wrong = H::hash_leaf(b"wrong root");
            assert_eq!(
                check(o, s, &roots[old], &wrong, &proof),
                Err(ProofError::MismatchedRoot {
                    expected: wrong,
                    got: roots[new]
                })
            );
            let got = check(o, s, &wrong, &roots[new], &proof);
            if o.is_power_of_two() {
                assert!(
                    matches!(got, Err(ProofError::MismatchedRoot { .. })),
                    "{got:?}"
                );
            } else {
                assert!(
                    matches!(got, Err(ProofError::MismatchedOldRoot { expected, got })
                        if expected == wrong && got == roots[old]),
                    "{got:?}"
                );
            }
            assert!(is_root_mismatch(&check(
                o,
                s,
                &roots[new],
                &roots[old],
                &proof
            )));
            // Other sizes: reversed sizes are invalid, other lengths are caught by length, and
            // equal lengths by a root, except for a new size whose path from the old tree's last
            // leaf has the same split, which hashes the proof identically.
            for (o2, s2) in [
                (o - 1, s),
                (o + 1, s),
                (o ^ 2, s),
                (o, s - 1),
                (o, s + 1),
                (o, s * 2),
                (o, s / 2),
            ] {
                if (o2, s2) == (o, s) {
                    continue;
                }
                let got = check(o2, s2, &roots[old], &roots[new], &proof);
                match consistency_proof_len(o2, s2) {
                    Err(e) => {
                        assert_eq!(e, ProofError::InvalidSizes { old: o2, new: s2 });
                        assert_eq!(got, Err(e));
                    }
                    Ok(l) if l != len => assert_eq!(
                        got,
                        Err(ProofError::WrongProofLength {
                            expected: l,
                            got: len
                        })
                    ),
                    Ok(_) if o2 == o && path_split(o - 1, s2) == path_split(o - 1, s) => {
                        assert_eq!(got, Ok(()), "{o2} -> {s2}")
                    }
                    Ok(_) => assert!(is_root_mismatch(&got), "{o2} -> {s2}: {got:?}"),
                }
            }
        }
    }
}

/// The trivial size pairs: only the true empty root, equal roots and empty proofs pass.
#[test]
fn trivial_consistency_cases() {
    type H = Blake3Hasher;
    let empty = H::empty_root();
    let some = H::hash_leaf(b"some root");
    let other = H::hash_leaf(b"other root");
    assert_eq!(verify_consistency::<H>(0, 0, &empty, &empty, &[]), Ok(()));
    assert_eq!(verify_consistency::<H>(0, 5, &empty, &some, &[]), Ok(()));
    assert_eq!(verify_consistency::<H>(3, 3, &some, &some, &[]), Ok(()));
    assert_eq!(
        verify_consistency::<H>(0, 5, &some, &other, &[]),
        Err(ProofError::MismatchedOldRoot {
            expected: some,
            got: empty
        })
    );
    assert_eq!(
        verify_consistency::<H>(0, 0, &empty, &some, &[]),
        Err(ProofError::MismatchedRoot {
            expected: some,
            got: empty
        })
    );
    assert_eq!(
        verify_consistency::<H>(3, 3, &some, &other, &[]),
        Err(ProofError::MismatchedRoot {
            expected: other,
            got: some
        })
    );
    for (old, new) in [(0, 0), (0, 5), (3, 3)] {
        assert_eq!(
            verify_consistency::<H>(old, new, &some, &some, &[some]),
            Err(ProofError::WrongProofLength {
                expected: 0,
                got: 1
            })
        );
    }
}

// ---------------------------------------------------------------------------------------------
// 4. Frontier bookkeeping.
// ---------------------------------------------------------------------------------------------

/// The (level, index) pairs each push reports, worked out by hand from the tree pictures.
#[test]
fn push_reports_the_completed_nodes() {
    type H = Blake3Hasher;
    let expected: [&[(u8, u64)]; 16] = [
        &[(0, 0)],
        &[(0, 1), (1, 0)],
        &[(0, 2)],
        &[(0, 3), (1, 1), (2, 0)],
        &[(0, 4)],
        &[(0, 5), (1, 2)],
        &[(0, 6)],
        &[(0, 7), (1, 3), (2, 1), (3, 0)],
        &[(0, 8)],
        &[(0, 9), (1, 4)],
        &[(0, 10)],
        &[(0, 11), (1, 5), (2, 2)],
        &[(0, 12)],
        &[(0, 13), (1, 6)],
        &[(0, 14)],
        &[(0, 15), (1, 7), (2, 3), (3, 1), (4, 0)],
    ];
    let leaves = leaf_data(expected.len());
    let mut frontier = Frontier::new();
    let mut store = MemoryNodes::new();
    for (i, (leaf, want)) in leaves.iter().zip(expected).enumerate() {
        let created = frontier.push::<H>(leaf);
        let ids: Vec<(u8, u64)> = created.iter().map(|n| (n.level, n.index)).collect();
        assert_eq!(ids, want, "push of leaf {i}");
        // The leaf is hashed as a leaf, and each parent from the two children already stored.
        assert_eq!(created[0].hash, H::hash_leaf(leaf));
        store.insert(created[0]);
        for node in &created[1..] {
            let left = store.node(node.level - 1, node.index * 2).unwrap();
            let right = store.node(node.level - 1, node.index * 2 + 1).unwrap();
            assert_eq!(node.hash, H::hash_children(&left, &right));
            store.insert(*node);
        }
        assert_eq!(frontier.size(), i as u64 + 1);
        assert_eq!(
            frontier.nodes().len(),
            frontier.size().count_ones() as usize
        );
        // The frontier's last node is always the most recent node reported.
        assert_eq!(frontier.nodes().last(), Some(&created.last().unwrap().hash));
    }
}

#[test]
fn push_leaf_hash_matches_push() {
    type H = Blake3Hasher;
    let mut by_data = Frontier::new();
    let mut by_hash = Frontier::new();
    for leaf in leaf_data(21) {
        assert_eq!(
            by_data.push::<H>(&leaf),
            by_hash.push_leaf_hash::<H>(H::hash_leaf(&leaf))
        );
    }
    assert_eq!(by_data, by_hash);
}

#[test]
fn frontier_parts_round_trip_and_are_validated() {
    type H = Blake3Hasher;
    let (store, frontiers) = build::<H>(&leaf_data(23));
    for f in &frontiers {
        let rebuilt = Frontier::from_parts(f.size(), f.nodes().to_vec()).unwrap();
        assert_eq!(&rebuilt, f);
        assert_eq!(rebuilt.root::<H>(), f.root::<H>());
    }
    assert_eq!(
        Frontier::from_parts(5, vec![[0; 32]]),
        Err(ProofError::FrontierMismatch {
            size: 5,
            expected: 2,
            got: 1
        })
    );
    assert_eq!(
        Frontier::from_parts(0, vec![[0; 32]]),
        Err(ProofError::FrontierMismatch {
            size: 0,
            expected: 0,
            got: 1
        })
    );
    // Building the store in one call gives the same nodes and frontier as pushing one at a time.
    let (built, frontier) = MemoryNodes::from_leaves::<H, _>(leaf_data(23));
    assert_eq!(built, store);
    assert_eq!(frontier, frontiers[23]);
    // A loaded frontier keeps growing exactly like the one that was never persisted.
    let mut loaded = Frontier::load(&store, 11).unwrap();
    let mut original = frontiers[11].clone();
    for leaf in leaf_data(23).iter().skip(11) {
        assert_eq!(loaded.push::<H>(leaf), original.push::<H>(leaf));
    }
    assert_eq!(loaded, frontiers[23]);
}

#[test]
fn missing_nodes_are_reported_as_source_errors() {
    type H = Blake3Hasher;
    let (store, _) = build::<H>(&leaf_data(6));
    // Size 7 needs leaf 6, which was never stored.
    assert_eq!(
        root_at::<H, _>(&store, 7),
        Err(MissingNode { level: 0, index: 6 })
    );
    assert_eq!(
        Frontier::load(&store, 8),
        Err(MissingNode { level: 3, index: 0 })
    );
    assert!(matches!(
        inclusion_proof::<H, _>(&store, 0, 7),
        Err(BuildError::Source(MissingNode { level: 0, index: 6 }))
    ));
    assert!(matches!(
        consistency_proof::<H, _>(&store, 3, 8),
        Err(BuildError::Source(MissingNode { .. }))
    ));
}

// ---------------------------------------------------------------------------------------------
// 5. Proof cost.
// ---------------------------------------------------------------------------------------------

/// A tree of any size whose leaves are all the same, so node (level, index) is the same hash for
/// every index and can be computed instead of stored. It makes trees of 2^40 leaves and more
/// cheap to prove from, which the read-count bounds need.
struct UniformTree {
    levels: Vec<Hash>,
}

impl UniformTree {
    fn new<H: MerkleHasher>() -> Self {
        let mut levels = vec![H::hash_leaf(b"same")];
        for level in 1..64 {
            let below = levels[level - 1];
            levels.push(H::hash_children(&below, &below));
        }
        Self { levels }
    }
}

impl NodeSource for UniformTree {
    type Error = std::convert::Infallible;

    fn node(&self, level: u8, _index: u64) -> Result<Hash, Self::Error> {
        Ok(self.levels[level as usize])
    }
}

/// Proofs read O(log n) nodes, even in huge trees: at most 2 reads per level of the tree.
#[test]
fn proofs_read_logarithmically_many_nodes() {
    type H = Blake3Hasher;
    let tree = CountingSource::new(UniformTree::new::<H>());
    let leaf = H::hash_leaf(b"same");
    for size in [
        1_000_000u64,
        (1 << 40) + 12_345,
        (1 << 40) - 1,
        u64::MAX >> 1,
        (1 << 63) + 0x5555,
        u64::MAX,
    ] {
        let bound = 2 * u64::from(64 - size.leading_zeros()) + 2;
        let root = root_at::<H, _>(&tree, size).unwrap();
        for index in [0, 1, size / 3, size / 2, size - 2, size - 1] {
            tree.reset();
            let proof = inclusion_proof::<H, _>(&tree, index, size).unwrap();
            assert!(tree.reads() <= bound, "{} reads", tree.reads());
            verify_inclusion::<H>(&leaf, index, size, &proof, &root).unwrap();
        }
        for old in [1, 2, 3, size / 3, size / 2 + 1, size - 1] {
            tree.reset();
            let proof = consistency_proof::<H, _>(&tree, old, size).unwrap();
            assert!(tree.reads() <= bound, "{} reads", tree.reads());
            let old_root = root_at::<H, _>(&tree, old).unwrap();
            verify_consistency::<H>(old, size, &old_root, &root, &proof).unwrap();
        }
    }
}

/// A real one-million-leaf tree in memory: an inclusion proof costs far less than a millisecond
/// (the bound is loose so that a loaded shared machine and an unoptimized build still pass).
#[test]
fn million_leaf_inclusion_proofs_are_fast() {
    type H = Blake3Hasher;
    const N: u64 = 1_000_000;
    let mut store = MemoryNodes::new();
    let mut frontier = Frontier::new();
    for i in 0..N {
        store.extend(frontier.push::<H>(&i.to_le_bytes()));
    }
    let root = frontier.root::<H>();
    let source = CountingSource::new(&store);
    let rounds = 2_000u64;
    let mut elapsed = Duration::ZERO;
    let mut max_reads = 0;
    for r in 0..rounds {
        let index = r.wrapping_mul(0x9e37_79b9_7f4a_7c15) % N;
        source.reset();
        let start = Instant::now();
        let proof = inclusion_proof::<H, _>(&source, index, N).unwrap();
        elapsed += start.elapsed();
        max_reads = max_reads.max(source.reads());
        verify_inclusion::<H>(&H::hash_leaf(&index.to_le_bytes()), index, N, &proof, &root)
            .unwrap();
    }
    let average = elapsed / rounds as u32;
    eprintln!("inclusion proof at {N} leaves: {average:?} on average, at most {max_reads} reads");
    assert!(max_reads <= 2 * 20 + 2, "{max_reads} reads");
    assert!(average < Duration::from_millis(1), "{average:?} per proof");
}
