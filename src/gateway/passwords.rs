//! Password checks and hashes for every door (CSM protocol logons, REST tokens,
//! user changes) on one small pool of threads, sized from the cores, with a bounded
//! queue in front of it (policy.md §1.4).
//!
//! argon2id takes ~19 MiB per check by design. Run on whatever thread asked — the
//! async workers, tokio's blocking pool of up to 512 threads — each thread's malloc
//! arena ends up holding its own copy of that memory, and 64 logons at once took the
//! gateway past 700 MiB. On a fixed pool of N threads at most N checks run at once,
//! each thread reusing its own argon2 memory (allocated once, wiped after each
//! check); the rest wait in the queue.

use std::sync::OnceLock;
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex};

use zeroize::Zeroizing;

/// Checks waiting for a thread beyond which the doors answer "busy" at once.
pub const QUEUE: usize = 256;

/// One piece of work: runs on a pool thread.
type Job = Box<dyn FnOnce() + Send>;

struct Pool {
    jobs: SyncSender<Job>,
}

fn pool() -> &'static Pool {
    static POOL: OnceLock<Pool> = OnceLock::new();
    POOL.get_or_init(|| {
        let (jobs, queue) = sync_channel::<Job>(QUEUE);
        let queue = Arc::new(Mutex::new(queue));
        for i in 0..threads() {
            let queue = Arc::clone(&queue);
            let spawned = std::thread::Builder::new()
                .name(format!("zgate-passwords-{i}"))
                .spawn(move || work(&queue));
            if let Err(e) = spawned {
                tracing::error!(error = %e, "password pool: a thread could not start");
            }
        }
        Pool { jobs }
    })
}

/// How many checks run at once: the cores, at most 4.
pub fn threads() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .clamp(1, 4)
}

fn work(queue: &Mutex<Receiver<Job>>) {
    loop {
        let job = match queue.lock() {
            Ok(q) => q.recv(),
            Err(_) => return,
        };
        match job {
            Ok(job) => job(),
            Err(_) => return,
        }
    }
}

/// Why a check did not run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PoolError {
    /// The queue is full: too many checks at once.
    #[error("too many password checks at once; try again")]
    Busy,
    /// The pool has stopped.
    #[error("the password checks have stopped")]
    Stopped,
}

/// Runs `f` on the pool and waits for it, blocking this thread (for callers that
/// are not async: the listener's logon decision, a user change's new hash).
pub fn on_pool<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T, PoolError> {
    run_blocking(f)
}

fn run_blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T, PoolError> {
    let (tx, rx) = sync_channel(1);
    let job: Job = Box::new(move || {
        let _ = tx.send(f());
    });
    match pool().jobs.try_send(job) {
        Ok(()) => rx.recv().map_err(|_| PoolError::Stopped),
        Err(TrySendError::Full(_)) => Err(PoolError::Busy),
        Err(TrySendError::Disconnected(_)) => Err(PoolError::Stopped),
    }
}

/// Whether `password` matches `phc`, checked on the pool (blocking the caller).
pub fn verify_blocking(phc: &str, password: &str) -> Result<bool, PoolError> {
    let phc = phc.to_owned();
    let password = Zeroizing::new(password.to_owned());
    run_blocking(move || verify_in_place(&phc, &password))
}

/// Largest argon2 memory a pool thread keeps for reuse: 64 MiB (1 KiB blocks).
const MAX_KEPT_BLOCKS: usize = 64 * 1024;

thread_local! {
    /// This pool thread's argon2 memory, kept across checks. Allocating ~19 MiB
    /// per check and freeing it makes glibc raise its mmap threshold and keep such
    /// blocks in its heaps: 64 logons took 220 MiB; reused, a thread holds one.
    static BLOCKS: std::cell::RefCell<Vec<argon2::Block>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// [`crate::password::verify`], computing the hash into this thread's kept memory
/// (and wiping it afterwards); the comparison is the crate's constant-time one.
fn verify_in_place(phc: &str, password: &str) -> bool {
    let Ok(hash) = argon2::PasswordHash::new(phc) else {
        return false;
    };
    let Ok(params) = argon2::Params::try_from(&hash) else {
        return false;
    };
    let blocks = params.block_count();
    let (Some(expected), Some(salt)) = (hash.hash, hash.salt) else {
        return false;
    };
    if blocks > MAX_KEPT_BLOCKS || hash.algorithm.as_str() != "argon2id" {
        return crate::password::verify(phc, password);
    }
    let version = match hash.version.map(argon2::Version::try_from).transpose() {
        Ok(v) => v.unwrap_or_default(),
        Err(_) => return false,
    };
    let mut salt_bytes = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_bytes) else {
        return false;
    };
    let argon = argon2::Argon2::new(argon2::Algorithm::Argon2id, version, params);
    let mut out = Zeroizing::new(vec![0u8; expected.len()]);
    BLOCKS.with(|kept| {
        let mut kept = kept.borrow_mut();
        if kept.len() < blocks {
            kept.resize(blocks, argon2::Block::default());
        }
        let done = argon.hash_password_into_with_memory(
            password.as_bytes(),
            salt,
            &mut out,
            &mut kept[..blocks],
        );
        // The blocks hold password-derived data: wiped before the next use.
        kept[..blocks].fill(argon2::Block::default());
        done.is_ok()
            && argon2::password_hash::Output::new(&out).is_ok_and(|computed| computed == expected)
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn checks_run_on_the_pool() {
        let params = argon2::Params::new(256, 1, 1, None).unwrap();
        let phc =
            crate::password::hash_password("a password", b"sixteen-byte-slt", params).unwrap();
        assert_eq!(verify_blocking(&phc, "a password"), Ok(true));
        assert_eq!(verify_blocking(&phc, "another"), Ok(false));
        // The same answers as the crate's own check, for a full-cost hash too.
        let full =
            crate::password::hash_password("pw", b"sixteen-byte-slt", argon2::Params::default())
                .unwrap();
        for (pw, ok) in [("pw", true), ("pW", false), ("", false)] {
            assert_eq!(verify_blocking(&full, pw), Ok(ok));
            assert_eq!(crate::password::verify(&full, pw), ok);
        }
        assert_eq!(verify_blocking("not a hash", "pw"), Ok(false));
        let thread = on_pool(|| std::thread::current().name().map(str::to_owned))
            .unwrap()
            .unwrap();
        assert!(thread.starts_with("zgate-passwords-"), "{thread}");
    }
}
