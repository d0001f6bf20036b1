//! Browser sessions of the web UI: a random id in an `HttpOnly;
//! SameSite=Strict` cookie, kept server-side with an expiry, each with its
//! CSRF token; logging in (with the RPC cookie or password) marks one
//! authenticated and gives it a new id.
//!
//! Every browser gets a visitor session on its first API call, so that its
//! POSTs (starting a download) carry a CSRF token too; only an
//! authenticated session reaches the wallet, votes and purchases.
//!
//! The table is a store with its own lock (listed under "Shared state" in
//! ARCHITECTURE.md): every operation is one short critical section, no I/O.

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

use rand::{rngs::OsRng, RngCore};

/// Name of the session cookie.
pub const COOKIE: &str = "rusty_session";
/// A visitor session lives this long after its last use.
pub const VISITOR_IDLE: Duration = Duration::from_secs(60 * 60);
/// An authenticated session ends this long after its last use...
pub const AUTH_IDLE: Duration = Duration::from_secs(30 * 60);
/// ... and this long after the login, whatever its use.
pub const AUTH_MAX: Duration = Duration::from_secs(8 * 60 * 60);
/// Most sessions held; past it the least recently used visitor goes.
pub const MAX_SESSIONS: usize = 4096;
/// Failed logins allowed per [`LOGIN_WINDOW`] (for the whole UI: it is
/// meant for one operator, so a guesser slows the operator too, never the
/// other way round).
pub const LOGIN_FAILURES: u32 = 10;
pub const LOGIN_WINDOW: Duration = Duration::from_secs(60);
/// Prepared sends a session holds; a confirmation older than
/// [`PENDING_TTL`] is refused.
const MAX_PENDING: usize = 8;
pub const PENDING_TTL: Duration = Duration::from_secs(5 * 60);

/// 32 random bytes, hex.
pub fn random_token() -> String {
    let mut b = [0u8; 32];
    OsRng.fill_bytes(&mut b);
    hex::encode(b)
}

/// A wallet payment built and signed for a confirmation step.
#[derive(Debug, Clone)]
pub struct PendingSend {
    pub raw_tx: String,
    pub address: String,
    pub amount_units: u64,
    pub fee_units: u64,
    created: Instant,
}

impl PendingSend {
    pub fn new(raw_tx: String, address: String, amount_units: u64, fee_units: u64) -> Self {
        PendingSend {
            raw_tx,
            address,
            amount_units,
            fee_units,
            created: Instant::now(),
        }
    }
}

#[derive(Debug)]
struct Session {
    csrf: String,
    authenticated_at: Option<Instant>,
    last_used: Instant,
    pending: HashMap<String, PendingSend>,
}

impl Session {
    fn visitor(now: Instant) -> Session {
        Session {
            csrf: random_token(),
            authenticated_at: None,
            last_used: now,
            pending: HashMap::new(),
        }
    }

    fn expired(&self, now: Instant) -> bool {
        match self.authenticated_at {
            Some(at) => {
                now.duration_since(self.last_used) > AUTH_IDLE || now.duration_since(at) > AUTH_MAX
            }
            None => now.duration_since(self.last_used) > VISITOR_IDLE,
        }
    }
}

/// What a request's session is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionView {
    pub id: String,
    pub csrf: String,
    pub authenticated: bool,
    /// The id is new: the response must set the cookie.
    pub created: bool,
}

#[derive(Debug)]
struct LoginLimit {
    window_start: Instant,
    failures: u32,
}

/// Why a login was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginRefused {
    WrongCredentials,
    TooManyAttempts,
}

/// The session table.
#[derive(Debug)]
pub struct Sessions {
    table: Mutex<HashMap<String, Session>>,
    login: Mutex<LoginLimit>,
}

impl Default for Sessions {
    fn default() -> Self {
        Sessions {
            table: Mutex::new(HashMap::new()),
            login: Mutex::new(LoginLimit {
                window_start: Instant::now(),
                failures: 0,
            }),
        }
    }
}

impl Sessions {
    /// The session named by the cookie `id`, refreshed; a new visitor
    /// session when there is none (or it expired).
    pub fn touch(&self, id: Option<&str>) -> SessionView {
        let now = Instant::now();
        let mut table = self.table();
        if let Some(id) = id {
            match table.get_mut(id) {
                Some(s) if !s.expired(now) => {
                    s.last_used = now;
                    return SessionView {
                        id: id.to_owned(),
                        csrf: s.csrf.clone(),
                        authenticated: s.authenticated_at.is_some(),
                        created: false,
                    };
                }
                Some(_) => {
                    table.remove(id);
                }
                None => {}
            }
        }
        Self::insert_new(&mut table, now, false)
    }

    /// A new session in `table`, authenticated or a visitor.
    fn insert_new(
        table: &mut HashMap<String, Session>,
        now: Instant,
        authenticated: bool,
    ) -> SessionView {
        Self::make_room(table, now);
        let id = random_token();
        let mut s = Session::visitor(now);
        s.authenticated_at = authenticated.then_some(now);
        let view = SessionView {
            id: id.clone(),
            csrf: s.csrf.clone(),
            authenticated,
            created: true,
        };
        table.insert(id, s);
        view
    }

    /// The table; a panic elsewhere while it was held leaves it usable
    /// (every change is a single insert or remove).
    fn table(&self) -> std::sync::MutexGuard<'_, HashMap<String, Session>> {
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn make_room(table: &mut HashMap<String, Session>, now: Instant) {
        if table.len() < MAX_SESSIONS {
            return;
        }
        table.retain(|_, s| !s.expired(now));
        if table.len() >= MAX_SESSIONS {
            let oldest = table
                .iter()
                .filter(|(_, s)| s.authenticated_at.is_none())
                .min_by_key(|(_, s)| s.last_used)
                .map(|(id, _)| id.clone());
            if let Some(id) = oldest {
                table.remove(&id);
            }
        }
    }

    /// Counts a login attempt against the limit; `false` when over it.
    pub fn login_allowed(&self) -> bool {
        let now = Instant::now();
        let mut l = self.login.lock().unwrap_or_else(|e| e.into_inner());
        if now.duration_since(l.window_start) > LOGIN_WINDOW {
            l.window_start = now;
            l.failures = 0;
        }
        l.failures < LOGIN_FAILURES
    }

    pub fn login_failed(&self) {
        let mut l = self.login.lock().unwrap_or_else(|e| e.into_inner());
        l.failures = l.failures.saturating_add(1);
    }

    /// Replaces session `old` by a new authenticated one (a new id, so a
    /// session id planted before the login is worthless after it).
    pub fn authenticate(&self, old: &str) -> SessionView {
        let mut table = self.table();
        table.remove(old);
        Self::insert_new(&mut table, Instant::now(), true)
    }

    pub fn end(&self, id: &str) {
        let mut table = self.table();
        table.remove(id);
    }

    /// Holds a prepared send for session `id`; returns its confirmation id.
    pub fn add_pending(&self, id: &str, send: PendingSend) -> Option<String> {
        let mut table = self.table();
        let s = table.get_mut(id)?;
        s.pending.retain(|_, p| p.created.elapsed() < PENDING_TTL);
        if s.pending.len() >= MAX_PENDING {
            return None;
        }
        let token = random_token();
        s.pending.insert(token.clone(), send);
        Some(token)
    }

    /// Takes (once) the prepared send `token` of session `id`, if it is
    /// still fresh.
    pub fn take_pending(&self, id: &str, token: &str) -> Option<PendingSend> {
        let mut table = self.table();
        let p = table.get_mut(id)?.pending.remove(token)?;
        (p.created.elapsed() < PENDING_TTL).then_some(p)
    }
}

/// Compares two byte strings in time that depends only on their lengths.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_login_gives_a_new_id_and_the_old_one_is_gone() {
        let s = Sessions::default();
        let v = s.touch(None);
        assert!(v.created && !v.authenticated);
        let again = s.touch(Some(&v.id));
        assert_eq!(again.id, v.id);
        assert!(!again.created);
        let a = s.authenticate(&v.id);
        assert_ne!(a.id, v.id);
        assert!(s.touch(Some(&a.id)).authenticated);
        // The visitor id planted before the login is not authenticated.
        let planted = s.touch(Some(&v.id));
        assert!(planted.created && !planted.authenticated);
    }

    #[test]
    fn a_pending_send_is_taken_once() {
        let s = Sessions::default();
        let v = s.authenticate("none");
        let t = s
            .add_pending(&v.id, PendingSend::new("00".into(), "a".into(), 1, 2))
            .unwrap();
        assert!(s.take_pending(&v.id, &t).is_some());
        assert!(s.take_pending(&v.id, &t).is_none());
        assert!(s
            .add_pending("unknown", PendingSend::new("00".into(), "a".into(), 1, 2))
            .is_none());
    }

    #[test]
    fn logins_are_limited_after_repeated_failures() {
        let s = Sessions::default();
        for _ in 0..LOGIN_FAILURES {
            assert!(s.login_allowed());
            s.login_failed();
        }
        assert!(!s.login_allowed());
    }

    #[test]
    fn constant_time_eq_compares() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
