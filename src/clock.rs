//! The I/O layer's one clock: every listener, connector, ticker and timer of the
//! tokio shell reads time here, never from `SystemTime::now()` or
//! `std::time::Instant::now()` directly.
//!
//! Two readings come from it:
//! - **monotonic** time ([`Clock::now`]) for deadlines, heartbeats, backoff and
//!   ticks: always tokio's clock, so `tokio::time::pause()` (and
//!   `#[tokio::test(start_paused = true)]`) drives every timer;
//! - **wall** time ([`Clock::wall`], [`Clock::unix_secs`]) for PassTicket seconds,
//!   backup ids, flash times and the DS8000's clock. The system clock reads the
//!   operating system's wall clock (so it follows NTP steps); a clock made with
//!   [`Clock::starting_at`] derives wall time from tokio's clock, so paused time
//!   moves both readings together and a test's PassTickets, windows and backup ids
//!   are deterministic.
//!
//! It also hands out the seed for the only randomness the shell has (reconnect
//! jitter), so that a test can fix it.
//!
//! Clones share one origin: give every component of a test the same clock.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Where wall time comes from.
#[derive(Debug, Clone, Copy)]
enum Wall {
    /// The operating system's wall clock.
    System,
    /// `origin` at tokio instant `at`, advancing with tokio's clock.
    FollowTokio {
        origin: SystemTime,
        at: tokio::time::Instant,
    },
}

/// Time (monotonic and wall) and the jitter seed for the I/O layer.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    wall: Wall,
    seed: u64,
}

impl Default for Clock {
    fn default() -> Self {
        Clock::system()
    }
}

impl Clock {
    /// The production clock: tokio's monotonic clock, the system's wall clock, a seed
    /// from the wall clock's nanoseconds.
    pub fn system() -> Clock {
        let seed = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64);
        Clock {
            wall: Wall::System,
            seed,
        }
    }

    /// A clock whose wall time is `origin` now and then advances with tokio's clock
    /// (paused or not), with a fixed jitter seed. Must be called inside a tokio
    /// runtime (it reads tokio's clock).
    pub fn starting_at(origin: SystemTime, seed: u64) -> Clock {
        Clock {
            wall: Wall::FollowTokio {
                origin,
                at: tokio::time::Instant::now(),
            },
            seed,
        }
    }

    /// [`Clock::starting_at`] `unix_secs` seconds after the epoch.
    pub fn starting_at_unix(unix_secs: u64, seed: u64) -> Clock {
        Clock::starting_at(UNIX_EPOCH + Duration::from_secs(unix_secs), seed)
    }

    /// Monotonic time, as the sans-IO state machines take it.
    pub fn now(&self) -> std::time::Instant {
        tokio::time::Instant::now().into_std()
    }

    /// Monotonic time as tokio's timers take it.
    pub fn tokio_now(&self) -> tokio::time::Instant {
        tokio::time::Instant::now()
    }

    /// Wall time.
    pub fn wall(&self) -> SystemTime {
        match self.wall {
            Wall::System => SystemTime::now(),
            Wall::FollowTokio { origin, at } => origin + at.elapsed(),
        }
    }

    /// Wall time since the epoch (zero before it).
    pub fn since_epoch(&self) -> Duration {
        self.wall().duration_since(UNIX_EPOCH).unwrap_or_default()
    }

    /// Whole seconds since the epoch.
    pub fn unix_secs(&self) -> u64 {
        self.since_epoch().as_secs()
    }

    /// Milliseconds since the epoch.
    pub fn unix_millis(&self) -> u64 {
        u64::try_from(self.since_epoch().as_millis()).unwrap_or(u64::MAX)
    }

    /// The seed for reconnect jitter (never zero, as xorshift needs).
    pub fn seed(&self) -> u64 {
        self.seed | 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn paused_time_moves_wall_and_monotonic_together() {
        let clock = Clock::starting_at_unix(1_700_000_000, 7);
        let mono = clock.now();
        assert_eq!(clock.unix_secs(), 1_700_000_000);
        tokio::time::sleep(Duration::from_secs(90)).await;
        assert_eq!(clock.unix_secs(), 1_700_000_090);
        assert_eq!(clock.now() - mono, Duration::from_secs(90));
        assert_eq!(clock.clone().unix_millis(), 1_700_000_090_000);
        assert_eq!(clock.seed(), 7);
    }

    // Real time on purpose: this checks the production clock against the OS clock
    // (it waits for nothing).
    #[tokio::test]
    async fn system_clock_reads_the_wall_clock() {
        let clock = Clock::system();
        let os = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        assert!(clock.unix_secs().abs_diff(os) <= 1);
        assert_eq!(clock.seed() & 1, 1);
    }
}
