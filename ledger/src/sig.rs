//! Event signature checks: one equation for a single signature and for a batch.
//!
//! A signature `(R, s)` by key `A` over `EVENT_SIGNATURE || body` is valid when `s` is
//! canonical (`s < ℓ`), `R` and `A` decompress, and `[8][s]B = [8]R + [8][k]A` with
//! `k = SHA-512(R || A || EVENT_SIGNATURE || body) mod ℓ`: the cofactored check of RFC 8032
//! §5.1.7. Single and batch checks use this same equation, so whether an event is accepted
//! never depends on which other events it was checked with.
//!
//! A batch checks `Σ z_i (8[s_i]B − 8R_i − 8[k_i]A_i) = 0` with random 128-bit `z_i`, as one
//! multi-scalar multiplication. Terms of the same key are summed into one scalar first, so a
//! batch signed by a handful of keys multiplies about `n + keys + 1` points instead of the
//! `2n + 1` of a per-signature batch: events come in runs from the same agent, and this roughly
//! halves the dominant cost of verification.

use std::cell::RefCell;
use std::collections::HashMap;

use curve25519_dalek::constants::ED25519_BASEPOINT_POINT;
use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::{IsIdentity, VartimeMultiscalarMul};
use rand::Rng;
use sha2::{Digest, Sha512};

use crate::tags;

/// One signature to check: the signer's public key, the signature, the signed body.
#[derive(Clone, Copy, Debug)]
pub struct Item<'a> {
    /// The signer's public key.
    pub public_key: &'a [u8; 32],
    /// The 64-byte signature `R || s`.
    pub signature: &'a [u8; 64],
    /// The signed body (without the tag).
    pub body: &'a [u8],
}

/// Decompressed public keys, per thread (a decompression costs about as much as a quarter of
/// a verification, and a ledger has few keys).
fn key_point(public_key: &[u8; 32]) -> Option<EdwardsPoint> {
    thread_local! {
        static KEYS: RefCell<HashMap<[u8; 32], EdwardsPoint>> = RefCell::new(HashMap::new());
    }
    KEYS.with(|cache| {
        let mut cache = cache.borrow_mut();
        if let Some(point) = cache.get(public_key) {
            return Some(*point);
        }
        let point = CompressedEdwardsY(*public_key).decompress()?;
        if cache.len() >= 4096 {
            cache.clear();
        }
        cache.insert(*public_key, point);
        Some(point)
    })
}

/// `k = SHA-512(R || A || EVENT_SIGNATURE || body) mod ℓ`, without copying the body.
fn challenge(item: &Item<'_>) -> Scalar {
    let mut hash = Sha512::new();
    hash.update(&item.signature[..32]);
    hash.update(item.public_key);
    hash.update(tags::EVENT_SIGNATURE);
    hash.update(item.body);
    Scalar::from_bytes_mod_order_wide(&hash.finalize().into())
}

/// `true` when every signature in `items` is valid (an empty batch is). On `false` at least
/// one is not; check them one by one to find which.
pub fn verify_batch(items: &[Item<'_>]) -> bool {
    let mut rng = rand::thread_rng();
    let mut basepoint = Scalar::ZERO;
    let mut scalars = Vec::with_capacity(items.len() + 2);
    let mut points = Vec::with_capacity(items.len() + 2);
    // Per distinct key: its index in `key_terms`.
    let mut key_slot: HashMap<&[u8; 32], usize> = HashMap::new();
    let mut key_terms: Vec<(Scalar, EdwardsPoint)> = Vec::new();
    for item in items {
        let Some(s) = Option::<Scalar>::from(Scalar::from_canonical_bytes(
            item.signature[32..].try_into().expect("32 bytes"),
        )) else {
            return false;
        };
        let Some(r) =
            CompressedEdwardsY(item.signature[..32].try_into().expect("32 bytes")).decompress()
        else {
            return false;
        };
        let z = Scalar::from(rng.gen::<u128>());
        let k = challenge(item);
        basepoint += z * s;
        // z (R + kA − sB): collect -z for R and -zk for A, so the sum below is zero.
        scalars.push(-z);
        points.push(r);
        let slot = match key_slot.get(item.public_key) {
            Some(&slot) => slot,
            None => {
                let Some(a) = key_point(item.public_key) else {
                    return false;
                };
                key_terms.push((Scalar::ZERO, a));
                key_slot.insert(item.public_key, key_terms.len() - 1);
                key_terms.len() - 1
            }
        };
        key_terms[slot].0 -= z * k;
    }
    scalars.push(basepoint);
    points.push(ED25519_BASEPOINT_POINT);
    for (scalar, point) in key_terms {
        scalars.push(scalar);
        points.push(point);
    }
    EdwardsPoint::vartime_multiscalar_mul(scalars, points)
        .mul_by_cofactor()
        .is_identity()
}

/// One signature, by the same equation as a batch.
pub fn verify_one(item: &Item<'_>) -> bool {
    verify_batch(std::slice::from_ref(item))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entry::SignedEvent;
    use curve25519_dalek::constants::EIGHT_TORSION;
    use ed25519_dalek::{SigningKey, Verifier};

    fn events(keys: usize, n: usize) -> (Vec<SigningKey>, Vec<SignedEvent>) {
        let keys: Vec<SigningKey> = (0..keys)
            .map(|i| SigningKey::from_bytes(&[i as u8 + 1; 32]))
            .collect();
        let events = (0..n)
            .map(|i| SignedEvent::sign(&keys[i % keys.len()], format!("body {i}").into_bytes()))
            .collect();
        (keys, events)
    }

    fn batch_items<'a>(keys: &'a [[u8; 32]], events: &'a [SignedEvent]) -> Vec<Item<'a>> {
        events
            .iter()
            .enumerate()
            .map(|(i, e)| Item {
                public_key: &keys[i % keys.len()],
                signature: &e.signature,
                body: &e.body,
            })
            .collect()
    }

    #[test]
    fn valid_batches_pass_with_one_key_or_many() {
        for key_count in [1, 3, 40] {
            let (keys, events) = events(key_count, 100);
            let public: Vec<[u8; 32]> = keys.iter().map(|k| k.verifying_key().to_bytes()).collect();
            let items = batch_items(&public, &events);
            assert!(verify_batch(&items), "{key_count} keys");
            assert!(items.iter().all(verify_one));
            // The same signatures pass ed25519-dalek's own check.
            for (item, event) in items.iter().zip(&events) {
                let key = ed25519_dalek::VerifyingKey::from_bytes(item.public_key).unwrap();
                let message = crate::entry::signing_input(&event.body);
                let signature = ed25519_dalek::Signature::from_bytes(&event.signature);
                key.verify(&message, &signature).unwrap();
            }
        }
        assert!(verify_batch(&[]));
    }

    #[test]
    fn any_changed_byte_fails_the_batch_and_its_own_check() {
        let (keys, events) = events(2, 64);
        let public: Vec<[u8; 32]> = keys.iter().map(|k| k.verifying_key().to_bytes()).collect();
        for (victim, byte) in [(0, 0), (17, 31), (33, 32), (63, 63)] {
            let mut bad = events.clone();
            bad[victim].signature[byte] ^= 0x01;
            let items = batch_items(&public, &bad);
            assert!(!verify_batch(&items), "signature byte {byte} of #{victim}");
            assert!(!verify_one(&items[victim]));
            assert!(items
                .iter()
                .enumerate()
                .all(|(i, it)| i == victim || verify_one(it)));

            let mut bad = events.clone();
            bad[victim].body[0] ^= 0x20;
            assert!(
                !verify_batch(&batch_items(&public, &bad)),
                "body of #{victim}"
            );
        }
        // Signed by the other key.
        let mut swapped = batch_items(&public, &events);
        swapped[5].public_key = &public[0];
        assert!(!verify_batch(&swapped));
    }

    #[test]
    fn a_non_canonical_s_is_refused() {
        let (keys, events) = events(1, 1);
        let public = [keys[0].verifying_key().to_bytes()];
        let mut event = events[0].clone();
        // s + ℓ encodes the same residue but is not canonical.
        let s = Scalar::from_canonical_bytes(event.signature[32..].try_into().unwrap()).unwrap();
        let ell: [u8; 32] = [
            0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9,
            0xde, 0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
        ];
        let mut sum = [0u8; 32];
        let mut carry = 0u16;
        for i in 0..32 {
            let v = u16::from(s.as_bytes()[i]) + u16::from(ell[i]) + carry;
            sum[i] = v as u8;
            carry = v >> 8;
        }
        if carry == 0 && sum[31] & 0xe0 == 0 {
            event.signature[32..].copy_from_slice(&sum);
            assert!(!verify_one(
                &batch_items(&public, std::slice::from_ref(&event))[0]
            ));
        }
    }

    #[test]
    fn a_signature_valid_only_up_to_torsion_is_judged_the_same_alone_and_in_a_batch() {
        // R' = rB + T for an 8-torsion point T, s' = r + k'a with k' = H(R' || A || M): the
        // cofactored equation holds, the cofactorless one does not. ed25519-dalek's single
        // check refuses it; ours accepts it alone and in any batch, so acceptance never
        // depends on which events were checked together.
        let key = SigningKey::from_bytes(&[5; 32]);
        let public = key.verifying_key().to_bytes();
        let body = b"torsion".to_vec();
        let r = Scalar::from(123_456_789u64);
        let r_point = (ED25519_BASEPOINT_POINT * r + EIGHT_TORSION[1]).compress();
        let k = challenge(&Item {
            public_key: &public,
            signature: &{
                let mut sig = [0u8; 64];
                sig[..32].copy_from_slice(r_point.as_bytes());
                sig
            },
            body: &body,
        });
        let s = r + k * key.to_scalar();
        let mut signature = [0u8; 64];
        signature[..32].copy_from_slice(r_point.as_bytes());
        signature[32..].copy_from_slice(s.as_bytes());
        let dalek = ed25519_dalek::VerifyingKey::from_bytes(&public)
            .unwrap()
            .verify(
                &crate::entry::signing_input(&body),
                &ed25519_dalek::Signature::from_bytes(&signature),
            );
        assert!(dalek.is_err(), "the cofactorless check refuses it");

        let (keys, events) = events(1, 8);
        let mut mixed = events.clone();
        mixed[3] = SignedEvent {
            key_id: crate::KeyId::of_public_key(&public),
            signature,
            body,
        };
        let mut public_keys = vec![keys[0].verifying_key().to_bytes(); 8];
        public_keys[3] = public;
        let items: Vec<Item<'_>> = mixed
            .iter()
            .zip(&public_keys)
            .map(|(e, k)| Item {
                public_key: k,
                signature: &e.signature,
                body: &e.body,
            })
            .collect();
        assert!(verify_one(&items[3]));
        for _ in 0..16 {
            assert!(verify_batch(&items));
        }
    }
}
