//! Accounts and tokens at startup and from `controld token create`.

use crate::ids;
use crate::store::{Conn, Store, StoreError, accounts, sql};

impl From<sql::Error> for BootstrapError {
    fn from(e: sql::Error) -> Self {
        BootstrapError::Store(e.into())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BootstrapError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("account id {0:?}: expected 1 to 32 characters of [A-Za-z0-9_-]")]
    BadAccountId(String),
    #[error("the API token given belongs to another account than {0}")]
    TokenOfOtherAccount(String),
}

/// Makes sure an account and a token exist. `account_id`/`token` (from `CONTROLD_ACCOUNT_ID` /
/// `CONTROLD_API_TOKEN`) fix them for scripts and tests. Returns the account in use and the
/// token generated now, if any (a generated token is only ever shown then).
pub fn ensure_credentials(
    store: &Store,
    account_id: Option<&str>,
    token: Option<&str>,
) -> Result<(String, Option<String>), BootstrapError> {
    store.write_blocking(|c| Ok(c.transaction(|tx| credentials_in(tx, account_id, token))))?
}

fn credentials_in(
    tx: &Conn,
    account_id: Option<&str>,
    token: Option<&str>,
) -> Result<(String, Option<String>), BootstrapError> {
    let account = match account_id {
        Some(id) if !valid_account_id(id) => {
            return Err(BootstrapError::BadAccountId(id.to_owned()));
        }
        Some(id) => {
            accounts::ensure(tx, id)?;
            id.to_owned()
        }
        None => match accounts::first(tx)? {
            Some(id) => id,
            None => {
                let id = ids::new_uid();
                accounts::ensure(tx, &id)?;
                id
            }
        },
    };
    let new_token = match token {
        Some(t) => {
            accounts::add_token(tx, &account, t)?;
            if accounts::account_for_token(tx, t)?.as_deref() != Some(account.as_str()) {
                return Err(BootstrapError::TokenOfOtherAccount(account));
            }
            None
        }
        None if !accounts::has_tokens(tx, &account)? => {
            let t = ids::new_api_token();
            accounts::add_token(tx, &account, &t)?;
            Some(t)
        }
        None => None,
    };
    Ok((account, new_token))
}

/// `controld token create --account ID`: a new token (the account is created if needed).
pub fn create_token(store: &Store, account_id: &str) -> Result<String, BootstrapError> {
    if !valid_account_id(account_id) {
        return Err(BootstrapError::BadAccountId(account_id.to_owned()));
    }
    let token = ids::new_api_token();
    store.write_blocking(|c| {
        accounts::ensure(c, account_id)?;
        accounts::add_token(c, account_id, &token)
    })?;
    Ok(token)
}

fn valid_account_id(id: &str) -> bool {
    (1..=32).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_start_creates_credentials_once_and_fixed_ones_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("db")).unwrap();
        let (account, token) = ensure_credentials(&store, None, None).unwrap();
        let token = token.expect("first start creates a token");
        let (again, shown) = ensure_credentials(&store, None, None).unwrap();
        assert_eq!(again, account);
        assert!(
            shown.is_none(),
            "the token is created (and shown) only once"
        );
        let owner = store
            .read(|c| accounts::account_for_token(c, &token))
            .unwrap();
        assert_eq!(owner.as_deref(), Some(account.as_str()));

        let (fixed, _) = ensure_credentials(&store, Some("acct2"), Some("tok2")).unwrap();
        assert_eq!(fixed, "acct2");
        assert!(matches!(
            ensure_credentials(&store, Some("acct3"), Some("tok2")),
            Err(BootstrapError::TokenOfOtherAccount(_))
        ));
        assert!(matches!(
            ensure_credentials(&store, Some("../x"), None),
            Err(BootstrapError::BadAccountId(_))
        ));
    }
}
