//! What may be shown of configuration values that can carry secrets.
//!
//! A webhook URL often *is* the credential (Slack, Teams and most incident tools put
//! the token in the path or the query), so a URL reaches logs, metric labels and
//! errors only as its origin.

/// The scheme, host and port of `url`, without user info, path, query or fragment;
/// `<invalid url>` when it does not parse.
///
/// ```
/// use freshet_core::secrets::url_origin;
/// assert_eq!(
///     url_origin("https://user:pw@hooks.example.com:8443/services/T0/B0/secret?x=1"),
///     "https://hooks.example.com:8443"
/// );
/// assert_eq!(url_origin("not a url"), "<invalid url>");
/// ```
pub fn url_origin(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(u) => match u.host_str() {
            Some(host) => match u.port() {
                Some(port) => format!("{}://{host}:{port}", u.scheme()),
                None => format!("{}://{host}", u.scheme()),
            },
            None => format!("{}:", u.scheme()),
        },
        Err(_) => "<invalid url>".to_owned(),
    }
}
