//! The operations the sandbox serves, and the names the admin API uses for them.
//! Counters and fault queues are indexed by operation.

use std::fmt;

/// An operation of Dynata's API that the sandbox emulates.
///
/// Used to read request counters ([`Sandbox::count`](crate::Sandbox::count))
/// and to aim faults ([`Sandbox::inject`](crate::Sandbox::inject)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Operation {
    /// `POST /auth/v1/token/password`: log in with a username and password.
    Login,
    /// `POST /auth/v1/token/refresh`: trade a refresh token for a new pair.
    Refresh,
    /// `POST /auth/v1/logout`: end the session.
    Logout,
    /// `POST /auth/v1/token/code`: the authorization-code grant.
    ExchangeCode,
    /// `GET /sample/v1/users/info`: the logged-in user, behind a bearer token.
    UsersInfo,
}

impl Operation {
    /// Every operation, in the order the admin API lists them.
    pub const ALL: [Operation; 5] = [
        Operation::Login,
        Operation::Refresh,
        Operation::Logout,
        Operation::ExchangeCode,
        Operation::UsersInfo,
    ];

    /// The operation's name in the admin API: `login`, `refresh`, `logout`,
    /// `exchangeCode` or `usersInfo`.
    pub fn name(self) -> &'static str {
        match self {
            Operation::Login => "login",
            Operation::Refresh => "refresh",
            Operation::Logout => "logout",
            Operation::ExchangeCode => "exchangeCode",
            Operation::UsersInfo => "usersInfo",
        }
    }

    /// The HTTP method and path the operation is served at.
    pub fn route(self) -> (&'static str, &'static str) {
        match self {
            Operation::Login => ("POST", "/auth/v1/token/password"),
            Operation::Refresh => ("POST", "/auth/v1/token/refresh"),
            Operation::Logout => ("POST", "/auth/v1/logout"),
            Operation::ExchangeCode => ("POST", "/auth/v1/token/code"),
            Operation::UsersInfo => ("GET", "/sample/v1/users/info"),
        }
    }

    pub(crate) fn from_name(name: &str) -> Option<Operation> {
        Operation::ALL.into_iter().find(|op| op.name() == name)
    }

    pub(crate) fn index(self) -> usize {
        match self {
            Operation::Login => 0,
            Operation::Refresh => 1,
            Operation::Logout => 2,
            Operation::ExchangeCode => 3,
            Operation::UsersInfo => 4,
        }
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
