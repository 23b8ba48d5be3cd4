//! RFC 9162 (Certificate Transparency v2) Merkle trees over a pluggable 32-byte hash: the growing right border of the tree, roots, and inclusion and consistency proofs.
//!
//! The tree is the one of RFC 9162 §2.1.1: a leaf is hashed as `H(0x00 || data)`, an interior node as
//! `H(0x01 || left || right)`, and a tree of `n` leaves splits at the largest power of two smaller than
//! `n`. The ledger uses [`Blake3Hasher`]; [`Sha256Hasher`] is the RFC's own hash and lets the published
//! Certificate Transparency test vectors check this code.
//!
//! Storage is modelled as perfect subtrees. Node `(level, index)` is the root of the perfect subtree over
//! the leaves `[index << level, (index + 1) << level)`; level 0 is the leaf hash. Such a node never
//! changes once the tree has grown past it, so a store can persist every node [`Frontier::push`] reports
//! and later build proofs for any past tree size through a [`NodeSource`], reading O(log n) nodes.

use std::cell::Cell;

use sha2::{Digest, Sha256};
use thiserror::Error;

/// A 32-byte Merkle tree hash: a leaf hash, an interior node hash, or a root.
pub type Hash = [u8; 32];

/// The domain-separation byte RFC 9162 §2.1.1 puts in front of leaf data.
const LEAF_PREFIX: u8 = 0x00;

/// The domain-separation byte RFC 9162 §2.1.1 puts in front of two child hashes.
const NODE_PREFIX: u8 = 0x01;

/// The two hash constructions of RFC 9162 §2.1.1 over a 32-byte hash function.
///
/// The distinct prefixes keep a leaf from ever being reinterpreted as an interior node (the second
/// preimage attack on plain Merkle trees).
pub trait MerkleHasher {
    /// Hashes leaf data: `H(0x00 || data)`.
    fn hash_leaf(data: &[u8]) -> Hash;

    /// Hashes two child nodes into their parent: `H(0x01 || left || right)`.
    fn hash_children(left: &Hash, right: &Hash) -> Hash;

    /// The root of the empty tree: `H()`, the hash of the empty string.
    fn empty_root() -> Hash;
}

/// The ledger's Merkle hash: BLAKE3 with its default 32-byte output.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Blake3Hasher;

impl MerkleHasher for Blake3Hasher {
    fn hash_leaf(data: &[u8]) -> Hash {
        let mut hasher = blake3::Hasher::new();
        hasher.update(&[LEAF_PREFIX]);
        hasher.update(data);
        *hasher.finalize().as_bytes()
    }

    fn hash_children(left: &Hash, right: &Hash) -> Hash {
        let mut hasher = blake3::Hasher::new();
        hasher.update(&[NODE_PREFIX]);
        hasher.update(left);
        hasher.update(right);
        *hasher.finalize().as_bytes()
    }

    fn empty_root() -> Hash {
        *blake3::hash(&[]).as_bytes()
    }
}

/// SHA-256, the hash of RFC 6962 and RFC 9162, used by the known-answer tests and available to anyone
/// who needs trees compatible with Certificate Transparency logs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Sha256Hasher;

impl MerkleHasher for Sha256Hasher {
    fn hash_leaf(data: &[u8]) -> Hash {
        Sha256::new()
            .chain_update([LEAF_PREFIX])
            .chain_update(data)
            .finalize()
            .into()
    }

    fn hash_children(left: &Hash, right: &Hash) -> Hash {
        Sha256::new()
            .chain_update([NODE_PREFIX])
            .chain_update(left)
            .chain_update(right)
            .finalize()
            .into()
    }

    fn empty_root() -> Hash {
        Sha256::digest([]).into()
    }
}

/// Why a proof, a size pair or a frontier was refused.
///
/// For the two root mismatches, `expected` is the root the caller supplied (and trusts) and `got` is the
/// root that the proof, the leaf hash and the sizes actually lead to.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ProofError {
    /// The leaf index does not lie inside the tree (`index >= size`); every index is out of range for
    /// the empty tree.
    #[error("leaf index {index} is out of range for a tree of {size} leaves")]
    IndexOutOfRange {
        /// The requested leaf index.
        index: u64,
        /// The number of leaves in the tree.
        size: u64,
    },

    /// The proof holds more or fewer hashes than the index and sizes call for; this catches truncated
    /// proofs and proofs with extra hashes before any hashing happens.
    #[error("proof has {got} hashes, but exactly {expected} are required")]
    WrongProofLength {
        /// The number of hashes the index and sizes call for.
        expected: usize,
        /// The number of hashes the proof holds.
        got: usize,
    },

    /// The proof leads to a different root than the supplied one: the root of the tree for inclusion
    /// proofs, or the root of the new (larger) tree for consistency proofs. When both sizes of a
    /// consistency check are equal, `got` is the old root, which must equal the new one.
    #[error(
        "root mismatch: expected {}, the proof leads to {}",
        hex::encode(.expected),
        hex::encode(.got)
    )]
    MismatchedRoot {
        /// The root the caller supplied.
        expected: Hash,
        /// The root the proof leads to.
        got: Hash,
    },

    /// A consistency proof leads to a different root of the old (smaller) tree than the supplied one.
    /// An old tree of size 0 must have the empty root, [`MerkleHasher::empty_root`].
    #[error(
        "old root mismatch: expected {}, the proof leads to {}",
        hex::encode(.expected),
        hex::encode(.got)
    )]
    MismatchedOldRoot {
        /// The old root the caller supplied.
        expected: Hash,
        /// The old root the proof leads to.
        got: Hash,
    },

    /// The old tree of a consistency proof is larger than the new one; logs only grow.
    #[error("old tree size {old} is larger than new tree size {new}")]
    InvalidSizes {
        /// The old (supposedly smaller) tree size.
        old: u64,
        /// The new (supposedly larger) tree size.
        new: u64,
    },

    /// [`Frontier::from_parts`] was given a node count that does not match the tree size: a frontier
    /// holds exactly one node per set bit of the size.
    #[error("a frontier of {size} leaves holds {expected} nodes, but {got} were given")]
    FrontierMismatch {
        /// The tree size given.
        size: u64,
        /// The node count that size requires (`size.count_ones()`).
        expected: usize,
        /// The node count given.
        got: usize,
    },
}

/// The error of the proof and root builders that read a [`NodeSource`].
///
/// Building can fail for two unrelated reasons, and callers usually treat them differently: the request
/// itself is impossible (a [`ProofError`], the caller's fault), or the store could not produce a node it
/// should hold (the source's own error, an I/O or integrity problem). Keeping the source's error type
/// generic lets stores report their own errors without converting them.
#[derive(Debug, Error)]
pub enum BuildError<E> {
    /// The requested index or sizes are invalid, for example an index at or beyond the tree size or an
    /// old size larger than the new size.
    #[error(transparent)]
    Proof(#[from] ProofError),

    /// The node source failed to produce a stored node.
    #[error("failed to read a stored Merkle tree node")]
    Source(#[source] E),
}

/// Where stored perfect-subtree hashes come from.
///
/// Node `(level, index)` is the root of the perfect subtree over leaves
/// `[index << level, (index + 1) << level)`; level 0 is the leaf hash itself. Builders only ask for nodes
/// whose subtree lies entirely inside the tree size they were given, and every such node was reported by
/// [`Frontier::push`] when the tree reached that size.
pub trait NodeSource {
    /// The error returned when a node cannot be read.
    type Error;

    /// Returns the hash of the perfect subtree node at `(level, index)`.
    fn node(&self, level: u8, index: u64) -> Result<Hash, Self::Error>;
}

impl<S: NodeSource + ?Sized> NodeSource for &S {
    type Error = S::Error;

    fn node(&self, level: u8, index: u64) -> Result<Hash, Self::Error> {
        (**self).node(level, index)
    }
}

/// A perfect-subtree node created by [`Frontier::push`], to be persisted by the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewNode {
    /// The height of the subtree: 0 for a leaf hash.
    pub level: u8,
    /// The position of the subtree among the subtrees of the same level, counted from the left.
    pub index: u64,
    /// The root hash of the subtree.
    pub hash: Hash,
}

/// The right border of a growing tree: the roots of the perfect subtrees of the binary decomposition of
/// `size`, largest (leftmost) first.
///
/// This is all the state needed to append leaves and compute the current root, so a writer keeps only
/// this in memory. The hash function is chosen per call ([`Frontier::push`], [`Frontier::root`]); a
/// frontier must always be used with the same [`MerkleHasher`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Frontier {
    size: u64,
    nodes: Vec<Hash>,
}

impl Frontier {
    /// Creates the frontier of the empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// Rebuilds a frontier from its size and nodes (largest subtree first), as returned by
    /// [`Frontier::size`] and [`Frontier::nodes`].
    ///
    /// Fails with [`ProofError::FrontierMismatch`] unless there is exactly one node per set bit of
    /// `size`. The hashes themselves cannot be checked without the leaves.
    pub fn from_parts(size: u64, nodes: Vec<Hash>) -> Result<Self, ProofError> {
        let expected = size.count_ones() as usize;
        if nodes.len() != expected {
            return Err(ProofError::FrontierMismatch {
                size,
                expected,
                got: nodes.len(),
            });
        }
        Ok(Self { size, nodes })
    }

    /// Rebuilds the frontier of the tree of `size` leaves from stored nodes, reading one node per set
    /// bit of `size`.
    pub fn load<S: NodeSource>(source: &S, size: u64) -> Result<Self, S::Error> {
        let mut nodes = Vec::with_capacity(size.count_ones() as usize);
        let mut start = 0u64;
        // The decomposition is walked from the highest bit down so that the largest (leftmost) subtree
        // comes first, matching the order `push` maintains.
        for level in (0..u64::BITS as u8).rev() {
            if (size >> level) & 1 == 1 {
                nodes.push(source.node(level, start >> level)?);
                start += 1 << level;
            }
        }
        Ok(Self { size, nodes })
    }

    /// The number of leaves in the tree.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The roots of the perfect subtrees of the tree, largest (leftmost) first.
    pub fn nodes(&self) -> &[Hash] {
        &self.nodes
    }

    /// Appends a leaf, hashing `leaf_data` with [`MerkleHasher::hash_leaf`], and returns every perfect
    /// subtree node this completes: the leaf itself at level 0, then each parent up the tree.
    ///
    /// # Panics
    ///
    /// Panics if the tree already holds `u64::MAX` leaves.
    pub fn push<H: MerkleHasher>(&mut self, leaf_data: &[u8]) -> Vec<NewNode> {
        self.push_leaf_hash::<H>(H::hash_leaf(leaf_data))
    }

    /// Appends a leaf whose hash the caller already computed with [`MerkleHasher::hash_leaf`], and
    /// returns the completed nodes as [`Frontier::push`] does.
    ///
    /// # Panics
    ///
    /// Panics if the tree already holds `u64::MAX` leaves.
    pub fn push_leaf_hash<H: MerkleHasher>(&mut self, leaf_hash: Hash) -> Vec<NewNode> {
        let index = self.size;
        let next = index
            .checked_add(1)
            .expect("a Merkle tree cannot hold more than u64::MAX leaves");
        // Each trailing one bit of the old size is a perfect subtree of the same height as the one being
        // carried, so it merges with it, exactly like a binary increment carries.
        let mut created = Vec::with_capacity(index.trailing_ones() as usize + 1);
        let mut hash = leaf_hash;
        let mut level = 0u8;
        created.push(NewNode { level, index, hash });
        while (index >> level) & 1 == 1 {
            let left = self
                .nodes
                .pop()
                .expect("a frontier holds one node per set bit of its size");
            hash = H::hash_children(&left, &hash);
            level += 1;
            created.push(NewNode {
                level,
                index: index >> level,
                hash,
            });
        }
        self.nodes.push(hash);
        self.size = next;
        created
    }

    /// The Merkle tree hash of all leaves appended so far, or [`MerkleHasher::empty_root`] for the empty
    /// tree.
    pub fn root<H: MerkleHasher>(&self) -> Hash {
        // The RFC splits at the largest power of two, which makes the root a right fold over the
        // decomposition: the smallest subtree is the innermost right child.
        let mut nodes = self.nodes.iter().rev();
        match nodes.next() {
            None => H::empty_root(),
            Some(last) => nodes.fold(*last, |acc, left| H::hash_children(left, &acc)),
        }
    }
}

/// An in-memory [`NodeSource`] holding one vector of nodes per level, filled from [`NewNode`]s.
///
/// It serves tests and offline verification of trees that fit in memory. Inserting at an index far
/// beyond the stored ones allocates every slot below it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemoryNodes {
    levels: Vec<Vec<Option<Hash>>>,
}

/// The error of [`MemoryNodes`]: the requested node was never inserted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[error("no Merkle tree node is stored at level {level}, index {index}")]
pub struct MissingNode {
    /// The level of the missing node.
    pub level: u8,
    /// The index of the missing node within its level.
    pub index: u64,
}

impl MemoryNodes {
    /// Creates an empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Builds the tree over `leaves` with `H`, returning the store of every perfect subtree node and the
    /// final frontier.
    pub fn from_leaves<H, I>(leaves: I) -> (Self, Frontier)
    where
        H: MerkleHasher,
        I: IntoIterator,
        I::Item: AsRef<[u8]>,
    {
        let mut store = Self::new();
        let mut frontier = Frontier::new();
        for leaf in leaves {
            store.extend(frontier.push::<H>(leaf.as_ref()));
        }
        (store, frontier)
    }

    /// Stores one node, replacing any node already stored at the same position.
    ///
    /// # Panics
    ///
    /// Panics if the index does not fit in memory (`usize`).
    pub fn insert(&mut self, node: NewNode) {
        let level = usize::from(node.level);
        if self.levels.len() <= level {
            self.levels.resize_with(level + 1, Vec::new);
        }
        let slots = &mut self.levels[level];
        let index = usize::try_from(node.index).expect("node index must fit in memory");
        if slots.len() <= index {
            slots.resize(index + 1, None);
        }
        slots[index] = Some(node.hash);
    }
}

impl Extend<NewNode> for MemoryNodes {
    fn extend<T: IntoIterator<Item = NewNode>>(&mut self, iter: T) {
        for node in iter {
            self.insert(node);
        }
    }
}

impl NodeSource for MemoryNodes {
    type Error = MissingNode;

    fn node(&self, level: u8, index: u64) -> Result<Hash, MissingNode> {
        usize::try_from(index)
            .ok()
            .and_then(|i| {
                self.levels
                    .get(usize::from(level))?
                    .get(i)
                    .copied()
                    .flatten()
            })
            .ok_or(MissingNode { level, index })
    }
}

/// A [`NodeSource`] wrapper that counts reads, so callers (and tests) can check how many nodes a
/// proof costs.
#[derive(Debug)]
pub struct CountingSource<S> {
    inner: S,
    reads: Cell<u64>,
}

impl<S> CountingSource<S> {
    /// Wraps `inner` with a read counter starting at zero.
    pub fn new(inner: S) -> Self {
        Self {
            inner,
            reads: Cell::new(0),
        }
    }

    /// The number of successful and failed reads so far.
    pub fn reads(&self) -> u64 {
        self.reads.get()
    }

    /// Resets the read counter to zero.
    pub fn reset(&self) {
        self.reads.set(0);
    }

    /// Unwraps the inner source.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S: NodeSource> NodeSource for CountingSource<S> {
    type Error = S::Error;

    fn node(&self, level: u8, index: u64) -> Result<Hash, S::Error> {
        self.reads.set(self.reads.get() + 1);
        self.inner.node(level, index)
    }
}

/// The largest power of two strictly smaller than `n`, the split point `k` of RFC 9162 §2.1.1; `n` must
/// be at least 2.
fn split_point(n: u64) -> u64 {
    debug_assert!(n >= 2);
    1 << (u64::BITS - 1 - (n - 1).leading_zeros())
}

/// The naive Merkle tree hash `MTH(D[n])` of RFC 9162 §2.1.1, computed straight from the definition.
///
/// It hashes every leaf and is meant as a reference for tests and for small trees.
pub fn root_from_leaves<H: MerkleHasher>(leaf_data: &[&[u8]]) -> Hash {
    fn mth<H: MerkleHasher>(leaves: &[&[u8]]) -> Hash {
        if let [leaf] = leaves {
            return H::hash_leaf(leaf);
        }
        let k = split_point(leaves.len() as u64) as usize;
        H::hash_children(&mth::<H>(&leaves[..k]), &mth::<H>(&leaves[k..]))
    }
    if leaf_data.is_empty() {
        H::empty_root()
    } else {
        mth::<H>(leaf_data)
    }
}

/// The hash of the subtree over the `len >= 1` leaves starting at `start`, which must be a multiple of
/// the smallest power of two at least `len` (every subtree of the RFC's recursion is).
///
/// A perfect subtree is one stored node; otherwise the range is hashed from its own binary
/// decomposition, reading one node per set bit of `len`.
fn subtree_root<H: MerkleHasher, S: NodeSource>(
    source: &S,
    start: u64,
    len: u64,
) -> Result<Hash, S::Error> {
    debug_assert!(len >= 1);
    // Walking the decomposition from the smallest (rightmost) subtree leftwards makes the fold a simple
    // accumulator, since each larger subtree is the left child of everything to its right.
    let mut end = start + len;
    let mut acc: Option<Hash> = None;
    for level in 0..u64::BITS as u8 {
        if (len >> level) & 1 == 1 {
            end -= 1 << level;
            let node = source.node(level, end >> level)?;
            acc = Some(match acc {
                None => node,
                Some(right) => H::hash_children(&node, &right),
            });
        }
    }
    Ok(acc.expect("len is at least 1"))
}

/// The root of the tree of the first `size` leaves, read from stored nodes: one read per set bit of
/// `size`, or none for the empty tree.
pub fn root_at<H: MerkleHasher, S: NodeSource>(source: &S, size: u64) -> Result<Hash, S::Error> {
    if size == 0 {
        Ok(H::empty_root())
    } else {
        subtree_root::<H, S>(source, 0, size)
    }
}

/// The audit path `PATH(m, D[n])` of RFC 9162 §2.1.3.1 for leaf `index` in the tree of the first `size`
/// leaves, ordered from the leaf's sibling up to the root's child.
///
/// It reads O(log n) nodes: every sibling is a stored perfect subtree except at most one, the right part
/// of the tree at the point the path first turns left, which is hashed from its decomposition.
pub fn inclusion_proof<H: MerkleHasher, S: NodeSource>(
    source: &S,
    index: u64,
    size: u64,
) -> Result<Vec<Hash>, BuildError<S::Error>> {
    let expected = inclusion_proof_len(index, size)?;
    let mut proof = Vec::with_capacity(expected);
    // The RFC recursion is walked top-down; it lists siblings bottom-up, so the result is reversed.
    let (mut start, mut len) = (0u64, size);
    while len > 1 {
        let k = split_point(len);
        if index - start < k {
            proof.push(
                subtree_root::<H, S>(source, start + k, len - k).map_err(BuildError::Source)?,
            );
            len = k;
        } else {
            proof.push(subtree_root::<H, S>(source, start, k).map_err(BuildError::Source)?);
            start += k;
            len -= k;
        }
    }
    proof.reverse();
    debug_assert_eq!(proof.len(), expected);
    Ok(proof)
}

/// The consistency proof `PROOF(m, D[n])` of RFC 9162 §2.1.4.1 between the trees of the first
/// `old_size` and `new_size` leaves.
///
/// The proof is empty when the sizes are equal or the old tree is empty, since there is nothing to
/// prove; an old size larger than the new size is [`ProofError::InvalidSizes`]. Like
/// [`inclusion_proof`], it reads O(log n) nodes.
pub fn consistency_proof<H: MerkleHasher, S: NodeSource>(
    source: &S,
    old_size: u64,
    new_size: u64,
) -> Result<Vec<Hash>, BuildError<S::Error>> {
    let expected = consistency_proof_len(old_size, new_size)?;
    let mut proof = Vec::with_capacity(expected);
    if old_size == 0 || old_size == new_size {
        return Ok(proof);
    }
    // This walks SUBPROOF(m, D[start..start + len], whole) top-down; `whole` records whether the
    // current subtree is still the entire old tree, whose root the verifier already has.
    let (mut start, mut len, mut m, mut whole) = (0u64, new_size, old_size, true);
    while m != len {
        let k = split_point(len);
        if m <= k {
            proof.push(
                subtree_root::<H, S>(source, start + k, len - k).map_err(BuildError::Source)?,
            );
            len = k;
        } else {
            proof.push(subtree_root::<H, S>(source, start, k).map_err(BuildError::Source)?);
            start += k;
            len -= k;
            m -= k;
            whole = false;
        }
    }
    if !whole {
        proof.push(subtree_root::<H, S>(source, start, len).map_err(BuildError::Source)?);
    }
    proof.reverse();
    debug_assert_eq!(proof.len(), expected);
    Ok(proof)
}

/// Splits the audit path of leaf `index` in a tree of `size` leaves into its inner part (siblings below
/// the point where the leaf's path leaves the last leaf's path) and its border part (perfect subtrees to
/// the left above that point). `index < size` is required.
fn decompose_inclusion(index: u64, size: u64) -> (usize, usize) {
    let inner = (u64::BITS - (index ^ (size - 1)).leading_zeros()) as usize;
    // `checked_shr` covers an inner part of all 64 levels, where the shifted-out index is zero.
    let border = index.checked_shr(inner as u32).unwrap_or(0).count_ones() as usize;
    (inner, border)
}

/// The number of hashes in the inclusion proof of leaf `index` in a tree of `size` leaves, or
/// [`ProofError::IndexOutOfRange`] if the leaf is not in the tree.
pub fn inclusion_proof_len(index: u64, size: u64) -> Result<usize, ProofError> {
    if index >= size {
        return Err(ProofError::IndexOutOfRange { index, size });
    }
    let (inner, border) = decompose_inclusion(index, size);
    Ok(inner + border)
}

/// The number of hashes in the consistency proof between trees of `old_size` and `new_size` leaves, or
/// [`ProofError::InvalidSizes`] if the old tree is larger.
pub fn consistency_proof_len(old_size: u64, new_size: u64) -> Result<usize, ProofError> {
    if old_size > new_size {
        return Err(ProofError::InvalidSizes {
            old: old_size,
            new: new_size,
        });
    }
    if old_size == 0 || old_size == new_size {
        return Ok(0);
    }
    let (inner, border) = decompose_inclusion(old_size - 1, new_size);
    let shift = old_size.trailing_zeros() as usize;
    // When the old tree is itself a perfect subtree its root is the seed and is not sent.
    let seed_sent = usize::from(!old_size.is_power_of_two());
    Ok(seed_sent + inner - shift + border)
}

/// Hashes `seed` up through inner proof nodes, taking each node as the left or right sibling according
/// to the bits of `index`.
fn chain_inner<H: MerkleHasher>(seed: Hash, proof: &[Hash], index: u64) -> Hash {
    proof.iter().enumerate().fold(seed, |acc, (i, node)| {
        if (index >> i) & 1 == 0 {
            H::hash_children(&acc, node)
        } else {
            H::hash_children(node, &acc)
        }
    })
}

/// Like [`chain_inner`], but only through the left siblings: the right siblings lie beyond the old
/// tree, so they are skipped when recomputing the old root.
fn chain_inner_right<H: MerkleHasher>(seed: Hash, proof: &[Hash], index: u64) -> Hash {
    proof.iter().enumerate().fold(seed, |acc, (i, node)| {
        if (index >> i) & 1 == 1 {
            H::hash_children(node, &acc)
        } else {
            acc
        }
    })
}

/// Hashes `seed` up through border nodes, each of which is a left sibling.
fn chain_border_right<H: MerkleHasher>(seed: Hash, proof: &[Hash]) -> Hash {
    proof
        .iter()
        .fold(seed, |acc, node| H::hash_children(node, &acc))
}

/// The root that an inclusion proof leads to for `leaf_hash` at `index` in a tree of `size` leaves.
///
/// Fails if the index is out of range or the proof has the wrong length; the caller compares the result
/// with a trusted root (or calls [`verify_inclusion`], which does).
pub fn root_from_inclusion_proof<H: MerkleHasher>(
    leaf_hash: &Hash,
    index: u64,
    size: u64,
    proof: &[Hash],
) -> Result<Hash, ProofError> {
    let expected = inclusion_proof_len(index, size)?;
    if proof.len() != expected {
        return Err(ProofError::WrongProofLength {
            expected,
            got: proof.len(),
        });
    }
    let (inner, _) = decompose_inclusion(index, size);
    let hash = chain_inner::<H>(*leaf_hash, &proof[..inner], index);
    Ok(chain_border_right::<H>(hash, &proof[inner..]))
}

/// Verifies an inclusion proof (RFC 9162 §2.1.3.2): that `leaf_hash` is leaf `index` of the tree of
/// `size` leaves whose root is `root`.
///
/// The proof must have exactly the length the index and size call for, which refuses truncated proofs
/// and proofs with extra hashes outright.
///
/// As in RFC 9162, the proof authenticates the leaf against the root, not the size: a proof also
/// verifies for another size whose path has the same shape (for example leaf 0 in trees of 5 and 6
/// leaves). The size must therefore come together with the root, from a signed checkpoint.
pub fn verify_inclusion<H: MerkleHasher>(
    leaf_hash: &Hash,
    index: u64,
    size: u64,
    proof: &[Hash],
    root: &Hash,
) -> Result<(), ProofError> {
    let got = root_from_inclusion_proof::<H>(leaf_hash, index, size, proof)?;
    if got != *root {
        return Err(ProofError::MismatchedRoot {
            expected: *root,
            got,
        });
    }
    Ok(())
}

/// Verifies a consistency proof (RFC 9162 §2.1.4.2): that the tree of `old_size` leaves with root
/// `old_root` is a prefix of the tree of `new_size` leaves with root `new_root`.
///
/// Beyond the RFC, which only defines `0 < old_size < new_size`: equal sizes need an empty proof and equal
/// roots, and an old size of 0 needs an empty proof and the empty root as `old_root` (the empty tree is a
/// prefix of every tree, whatever `new_root` is).
///
/// As with [`verify_inclusion`], the sizes are only as trustworthy as the checkpoints the roots come
/// from: a proof also verifies for another new size whose path has the same shape.
pub fn verify_consistency<H: MerkleHasher>(
    old_size: u64,
    new_size: u64,
    old_root: &Hash,
    new_root: &Hash,
    proof: &[Hash],
) -> Result<(), ProofError> {
    let expected = consistency_proof_len(old_size, new_size)?;
    if proof.len() != expected {
        return Err(ProofError::WrongProofLength {
            expected,
            got: proof.len(),
        });
    }
    if old_size == 0 {
        let empty = H::empty_root();
        if *old_root != empty {
            return Err(ProofError::MismatchedOldRoot {
                expected: *old_root,
                got: empty,
            });
        }
    }
    if old_size == new_size {
        if old_root != new_root {
            return Err(ProofError::MismatchedRoot {
                expected: *new_root,
                got: *old_root,
            });
        }
        return Ok(());
    }
    if old_size == 0 {
        return Ok(());
    }

    // Now 0 < old_size < new_size. The proof is the tail of the inclusion proof of the old tree's last
    // leaf in the new tree, starting at the level of the old tree's rightmost perfect subtree (the
    // seed), so both roots can be recomputed from the seed.
    let (inner, _) = decompose_inclusion(old_size - 1, new_size);
    let shift = old_size.trailing_zeros() as usize;
    let inner = inner - shift;
    let (seed, rest) = if old_size.is_power_of_two() {
        (*old_root, proof)
    } else {
        (proof[0], &proof[1..])
    };
    let mask = (old_size - 1) >> shift;

    let old_got = chain_inner_right::<H>(seed, &rest[..inner], mask);
    let old_got = chain_border_right::<H>(old_got, &rest[inner..]);
    if old_got != *old_root {
        return Err(ProofError::MismatchedOldRoot {
            expected: *old_root,
            got: old_got,
        });
    }

    let new_got = chain_inner::<H>(seed, &rest[..inner], mask);
    let new_got = chain_border_right::<H>(new_got, &rest[inner..]);
    if new_got != *new_root {
        return Err(ProofError::MismatchedRoot {
            expected: *new_root,
            got: new_got,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_point_is_largest_smaller_power_of_two() {
        for n in 2u64..2000 {
            let k = split_point(n);
            assert!(
                k.is_power_of_two() && k < n && 2 * k >= n,
                "n = {n}, k = {k}"
            );
        }
        assert_eq!(split_point(u64::MAX), 1 << 63);
        assert_eq!(split_point((1 << 63) + 1), 1 << 63);
    }

    #[test]
    fn decomposition_handles_the_top_level() {
        // An index in the left half of a tree of more than 2^63 leaves has an inner part of all 64
        // levels, which must not overflow the shift.
        assert_eq!(decompose_inclusion(0, u64::MAX), (64, 0));
        assert_eq!(inclusion_proof_len(u64::MAX - 1, u64::MAX), Ok(63));
    }

    #[test]
    fn hashers_use_the_rfc_prefixes() {
        let data = b"evidence";
        let mut leaf = vec![LEAF_PREFIX];
        leaf.extend_from_slice(data);
        assert_eq!(
            Blake3Hasher::hash_leaf(data),
            *blake3::hash(&leaf).as_bytes()
        );
        let left = [1u8; 32];
        let right = [2u8; 32];
        let mut node = vec![NODE_PREFIX];
        node.extend_from_slice(&left);
        node.extend_from_slice(&right);
        assert_eq!(
            Blake3Hasher::hash_children(&left, &right),
            *blake3::hash(&node).as_bytes()
        );
        let sha: Hash = Sha256::digest(&node).into();
        assert_eq!(Sha256Hasher::hash_children(&left, &right), sha);
    }
}
