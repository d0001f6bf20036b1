//! The BLS benchmark behind `rusty-cli bench bls`: threshold recovery for
//! t = 3, 30 and 240 shares and aggregate verification, each next to the
//! raw `blst` operation it is built from, measured in the same run.
//!
//! - Recovery of a quorum signature from t shares is a t-point
//!   multi-scalar multiplication in G2 (plus Lagrange coefficients mod r);
//!   its yardstick is t single G2 scalar multiplications, which is what
//!   `blst` signing does (`t × sign`).
//! - Verifying one message signed by n keys (`fast_aggregate_verify`) is
//!   an aggregation of n keys and one pairing check; its yardstick is one
//!   raw single-signature verification.

use std::{fmt, time::Instant};

use rand::{rngs::StdRng, SeedableRng};

use rusty_crypto::bls::{
    recover_signature, BlsError, MemberId, Polynomial, PublicKey, SecretKey, Signature,
};

/// One threshold size.
#[derive(Debug, Clone)]
pub struct RecoveryFigure {
    pub threshold: usize,
    /// Mean time to recover (and check) the quorum signature.
    pub recover_us: f64,
    /// Mean time of `threshold` raw `blst` signatures (G2 scalar
    /// multiplications), the yardstick.
    pub raw_sign_us: f64,
}

/// One aggregate size.
#[derive(Debug, Clone)]
pub struct AggregateFigure {
    pub signers: usize,
    pub aggregate_verify_us: f64,
    /// Mean time of one raw single-signature verification.
    pub raw_verify_us: f64,
}

#[derive(Debug, Clone)]
pub struct BlsReport {
    pub recovery: Vec<RecoveryFigure>,
    pub aggregate: Vec<AggregateFigure>,
}

fn mean_us(iterations: usize, mut f: impl FnMut()) -> f64 {
    f(); // warm-up
    let start = Instant::now();
    for _ in 0..iterations {
        f();
    }
    start.elapsed().as_secs_f64() * 1e6 / iterations as f64
}

/// Runs the benchmark; `iterations` per figure (10 is plenty on a quiet
/// machine; the test uses 1).
pub fn run_bls_bench(
    thresholds: &[usize],
    signers: &[usize],
    iterations: usize,
) -> Result<BlsReport, BlsError> {
    let mut rng = StdRng::seed_from_u64(42);
    let iterations = iterations.max(1);
    let msg = b"rusty-coin bls bench: clsig";
    let mut recovery = Vec::new();
    for &t in thresholds {
        let poly = Polynomial::random(t, &mut rng)?;
        let quorum_key = poly.secret()?.public_key();
        let shares: Vec<(MemberId, Signature)> = (0..t as u32)
            .map(|i| {
                let id = MemberId::from_identity(&i.to_le_bytes());
                poly.share(id).map(|s| (id, s.sign(msg)))
            })
            .collect::<Result<_, _>>()?;
        let recovered = recover_signature(&shares, t)?;
        if !recovered.verify(msg, &quorum_key) {
            return Err(BlsError::InvalidSignature(
                "recovered signature does not verify",
            ));
        }
        let recover_us = mean_us(iterations, || {
            let _ = std::hint::black_box(recover_signature(&shares, t));
        });
        let keys: Vec<SecretKey> = (0..t).map(|_| SecretKey::generate(&mut rng)).collect();
        let raw_sign_us = mean_us(iterations, || {
            for k in &keys {
                std::hint::black_box(k.sign(msg));
            }
        });
        recovery.push(RecoveryFigure {
            threshold: t,
            recover_us,
            raw_sign_us,
        });
    }
    let mut aggregate = Vec::new();
    for &n in signers {
        let keys: Vec<SecretKey> = (0..n).map(|_| SecretKey::generate(&mut rng)).collect();
        let pks: Vec<PublicKey> = keys.iter().map(|k| k.public_key()).collect();
        let sigs: Vec<Signature> = keys.iter().map(|k| k.sign(msg)).collect();
        let agg = Signature::aggregate(&sigs)?;
        if !agg.fast_aggregate_verify(msg, &pks) {
            return Err(BlsError::InvalidSignature("aggregate does not verify"));
        }
        let aggregate_verify_us = mean_us(iterations, || {
            std::hint::black_box(agg.fast_aggregate_verify(msg, &pks));
        });
        let raw_verify_us = mean_us(iterations, || {
            std::hint::black_box(sigs[0].verify(msg, &pks[0]));
        });
        aggregate.push(AggregateFigure {
            signers: n,
            aggregate_verify_us,
            raw_verify_us,
        });
    }
    Ok(BlsReport {
        recovery,
        aggregate,
    })
}

impl fmt::Display for BlsReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "bls: blst min-pk, one thread")?;
        for r in &self.recovery {
            writeln!(
                f,
                "  recover t={:<4} {:>10.1} µs   raw {} x sign {:>10.1} µs   ratio {:.2}",
                r.threshold,
                r.recover_us,
                r.threshold,
                r.raw_sign_us,
                r.recover_us / r.raw_sign_us
            )?;
        }
        for (i, a) in self.aggregate.iter().enumerate() {
            write!(
                f,
                "  fast aggregate verify n={:<4} {:>10.1} µs   raw verify {:>10.1} µs   ratio {:.2}",
                a.signers,
                a.aggregate_verify_us,
                a.raw_verify_us,
                a.aggregate_verify_us / a.raw_verify_us
            )?;
            if i + 1 < self.aggregate.len() {
                writeln!(f)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bench_runs_and_reports_every_size() {
        let r = run_bls_bench(&[3, 5], &[4], 1).unwrap();
        assert_eq!(r.recovery.len(), 2);
        assert_eq!(r.aggregate.len(), 1);
        assert!(r
            .recovery
            .iter()
            .all(|x| x.recover_us > 0.0 && x.raw_sign_us > 0.0));
        assert!(r.to_string().contains("t=5"));
    }
}
