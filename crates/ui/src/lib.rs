//! The dashboard: the web page, its script and its style, built into the binary so that
//! the dashboard works with no build step and no internet, and the headers that lock
//! the page down.
//!
//! This room holds static assets only. The page holds no data: it signs in with an API
//! token and reads the server's own authenticated, audited API, so what it may show is
//! decided where every client's requests are decided. Depends on nothing; the HTTP
//! layer (`freshet`'s server) serves [`asset`] and routes the API calls.

/// One file of the dashboard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Asset {
    /// The URL path it is served at.
    pub path: &'static str,
    pub content_type: &'static str,
    pub body: &'static str,
}

/// Every file of the dashboard.
pub static ASSETS: [Asset; 3] = [
    Asset {
        path: "/",
        content_type: "text/html; charset=utf-8",
        body: include_str!("../assets/index.html"),
    },
    Asset {
        path: "/ui/app.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("../assets/app.js"),
    },
    Asset {
        path: "/ui/app.css",
        content_type: "text/css; charset=utf-8",
        body: include_str!("../assets/app.css"),
    },
];

/// Scripts, styles and requests from the page's own origin only, no framing, no forms
/// posting elsewhere: the token the page holds can only be read by the page's own code.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
    style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; \
    form-action 'self'; frame-ancestors 'none'";

/// The asset served at `path`, if any.
pub fn asset(path: &str) -> Option<&'static Asset> {
    ASSETS.iter().find(|a| a.path == path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_loads_only_its_own_files() {
        let page = asset("/").map(|a| a.body).unwrap_or_default();
        for a in &ASSETS[1..] {
            assert!(page.contains(a.path), "the page does not load {}", a.path);
        }
        // No inline script or style: the policy forbids them, so none may be needed.
        assert!(!page.contains("<script>") && !page.contains("<style"));
        assert!(!page.contains("http://") && !page.contains("https://"));
        assert!(asset("/ui/other.js").is_none());
    }

    #[test]
    fn the_script_never_writes_html() {
        let js = asset("/ui/app.js").map(|a| a.body).unwrap_or_default();
        for sink in [
            "innerHTML",
            "outerHTML",
            "insertAdjacentHTML",
            "document.write",
            "eval(",
        ] {
            assert!(!js.contains(sink), "app.js uses {sink}");
        }
    }
}
