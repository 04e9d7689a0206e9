//! A web form driven over HTTP as a browser without script would: the session cookie, the
//! sealed state of the last page, and a reading of what the page asks (its question's name,
//! the kind of field, the choices, the buttons, the problem shown).

use reqwest::blocking::Client as Http;

/// One respondent's visit to a link.
#[derive(Debug)]
pub struct WebForm {
    http: Http,
    url: String,
    cookie: Option<String>,
    /// The last page's HTML and status.
    pub page: String,
    pub status: u16,
}

fn attr<'a>(tag: &'a str, name: &str) -> Option<&'a str> {
    let marker = format!("{name}=\"");
    let start = tag.find(&marker)? + marker.len();
    let end = tag[start..].find('"')?;
    Some(&tag[start..start + end])
}

/// Undo the page's HTML escaping.
pub fn unescape(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

impl WebForm {
    /// Open the link at `url` (the server's address and the link's path).
    pub fn open(url: &str) -> WebForm {
        let mut f = WebForm {
            http: Http::builder()
                .pool_max_idle_per_host(0)
                .build()
                .expect("http client"),
            url: url.to_owned(),
            cookie: None,
            page: String::new(),
            status: 0,
        };
        let r = f.http.get(url).send().expect("GET the link");
        f.take(r);
        f
    }

    fn take(&mut self, r: reqwest::blocking::Response) {
        if let Some(c) = r.headers().get("set-cookie").and_then(|v| v.to_str().ok()) {
            self.cookie = Some(c.split(';').next().unwrap_or_default().to_owned());
        }
        self.status = r.status().as_u16();
        self.page = r.text().expect("page");
    }

    fn tags(&self, element: &str) -> std::vec::IntoIter<&str> {
        let open = format!("<{element} ");
        self.page
            .match_indices(open.as_str())
            .filter_map(|(i, _)| self.page[i..].find('>').map(|e| &self.page[i..i + e]))
            .collect::<Vec<_>>()
            .into_iter()
    }

    fn state(&self) -> String {
        self.tags("input")
            .find(|t| attr(t, "name") == Some("state"))
            .and_then(|t| attr(t, "value"))
            .map(unescape)
            .unwrap_or_default()
    }

    /// The name of the question shown, if the page asks one.
    pub fn question(&self) -> Option<String> {
        self.tags("form")
            .find_map(|t| attr(t, "data-question"))
            .filter(|q| !q.is_empty())
            .map(unescape)
    }

    /// The type of the answer field (`text`, `number`, `date`, … or `radio`, `checkbox`) and
    /// whether a number takes only whole ones.
    pub fn field(&self) -> Option<(String, bool)> {
        self.tags("input")
            .find(|t| attr(t, "name") == Some("answer"))
            .map(|t| {
                (
                    attr(t, "type").unwrap_or("text").to_owned(),
                    attr(t, "step") == Some("1"),
                )
            })
    }

    /// The choices offered (their names).
    pub fn choices(&self) -> Vec<String> {
        self.tags("input")
            .filter(|t| attr(t, "name") == Some("answer"))
            .filter(|t| matches!(attr(t, "type"), Some("radio" | "checkbox")))
            .filter_map(|t| attr(t, "value").map(unescape))
            .collect()
    }

    /// The value the answer field holds now (a default, or the answer so far).
    pub fn value(&self) -> Option<String> {
        self.tags("input")
            .find(|t| attr(t, "id") == Some("answer"))
            .and_then(|t| attr(t, "value"))
            .map(unescape)
    }

    pub fn has_button(&self, action: &str) -> bool {
        self.page.contains(&format!("value=\"{action}\">"))
            || self.page.contains(&format!("value=\"{action}\" class="))
    }

    /// The problem the page shows, if any.
    pub fn problem(&self) -> Option<String> {
        let start = self.page.find("role=\"alert\">")? + "role=\"alert\">".len();
        let end = self.page[start..].find("</")?;
        Some(unescape(&self.page[start..start + end]))
    }

    /// Press the button `action` with `answers` in the answer field (several for checkboxes).
    pub fn press(&mut self, action: &str, answers: &[&str]) {
        let state = self.state();
        let mut fields = vec![("state", state.as_str()), ("action", action)];
        fields.extend(answers.iter().map(|a| ("answer", *a)));
        let mut req = self.http.post(&self.url).form(&fields);
        if let Some(c) = &self.cookie {
            req = req.header("cookie", c);
        }
        let r = req.send().expect("POST the form");
        self.take(r);
    }
}
