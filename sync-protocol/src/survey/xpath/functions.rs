//! The ODK function library (the spec's "XPath Functions" table). Where the spec says "as in
//! XPath 1.0" we follow XPath 1.0; where it is silent we follow what ODK Collect (JavaRosa)
//! does, and say so at the function.

use super::convert::{
    self, Temporal, date_from_days, format_date, format_datetime, in_zone, instant_from_days,
    node_temporal, parse_temporal, temporal_days_of, time_fraction,
};
use super::eval::{Evaluator, Focus, R, Val, describe};
use super::parse::Call;
use super::table::Func;
use super::{EvalError, Instance, NodeValue, digest, geo};

/// A date-ish argument after unpacking its first node's typed value.
enum DateArg {
    Empty,
    Days(f64),
    Temporal(Temporal),
}

fn err<T>(function: Func, message: impl Into<String>) -> R<T> {
    Err(EvalError::Function {
        function: function.name(),
        message: message.into(),
    })
}

/// Java's `(int) x` / `(long) x`: truncation, NaN as 0, saturating.
pub(super) fn trunc_i64(x: f64) -> i64 {
    x.trunc() as i64
}

impl<I: Instance> Evaluator<'_, I> {
    pub(super) fn call(&mut self, c: &Call, f: Focus<I::Node>) -> R<Val<I::Node>> {
        let a = &c.args;
        match c.func {
            // Only the chosen branch is evaluated, as in JavaRosa.
            Func::If => {
                if self.bool_of(&a[0], f)? {
                    self.eval(&a[1], f)
                } else {
                    self.eval(&a[2], f)
                }
            }
            // Spec: the first of the two that is not empty; NaN counts as empty (JavaRosa).
            Func::Coalesce => {
                let v = self.eval(&a[0], f)?;
                let empty = match &v {
                    Val::Num(n) => n.is_nan(),
                    other => self.string(other).is_empty(),
                };
                if empty { self.eval(&a[1], f) } else { Ok(v) }
            }
            Func::IndexedRepeat => self.indexed_repeat(a, f),
            _ => {
                let mut vals = Vec::with_capacity(a.len());
                for e in a {
                    vals.push(self.eval(e, f)?);
                }
                self.apply(c, &vals, f)
            }
        }
    }

    fn apply(&mut self, c: &Call, v: &[Val<I::Node>], f: Focus<I::Node>) -> R<Val<I::Node>> {
        let func = c.func;
        let s = |ev: &Self, i: usize| ev.string(&v[i]);
        let n = |ev: &Self, i: usize| ev.number(&v[i]);
        let out = match func {
            Func::If | Func::Coalesce | Func::IndexedRepeat => Val::Str(String::new()),
            // ---- strings
            Func::String => Val::Str(s(self, 0)),
            // Spec: concatenates all values, and all nodes of node-set arguments.
            Func::Concat => Val::Str(self.flatten_strings(v)?.concat()),
            Func::Join => {
                let sep = s(self, 0);
                Val::Str(self.flatten_strings(&v[1..])?.join(&sep))
            }
            Func::Substr => {
                let chars: Vec<char> = s(self, 0).chars().collect();
                let len = chars.len() as i64;
                // JavaRosa: 0-based, end exclusive, negative indexes count from the end.
                let clamp = |i: i64| {
                    let i = if i < 0 { len + i } else { i };
                    usize::try_from(i.clamp(0, len)).unwrap_or(0)
                };
                let start = clamp(trunc_i64(n(self, 1)));
                let end = if v.len() > 2 {
                    clamp(trunc_i64(n(self, 2)))
                } else {
                    chars.len()
                };
                Val::Str(
                    chars
                        .get(start..end)
                        .map(String::from_iter)
                        .unwrap_or_default(),
                )
            }
            Func::SubstringBefore => {
                let (hay, needle) = (s(self, 0), s(self, 1));
                Val::Str(
                    hay.find(&needle)
                        .map(|i| hay[..i].to_owned())
                        .unwrap_or_default(),
                )
            }
            Func::SubstringAfter => {
                let (hay, needle) = (s(self, 0), s(self, 1));
                let after = hay
                    .find(&needle)
                    .map(|i| hay[i + needle.len()..].to_owned());
                Val::Str(after.unwrap_or_default())
            }
            Func::Translate => {
                let from: Vec<char> = s(self, 1).chars().collect();
                let to: Vec<char> = s(self, 2).chars().collect();
                let out = s(self, 0)
                    .chars()
                    .filter_map(|ch| match from.iter().position(|&x| x == ch) {
                        None => Some(ch),
                        Some(i) => to.get(i).copied(),
                    })
                    .collect();
                Val::Str(out)
            }
            Func::StringLength => {
                let text = if v.is_empty() {
                    self.node_str(f.node)
                } else {
                    s(self, 0)
                };
                Val::Num(text.chars().count() as f64)
            }
            Func::NormalizeSpace => {
                let text = if v.is_empty() {
                    self.node_str(f.node)
                } else {
                    s(self, 0)
                };
                let words: Vec<&str> = text.split_ascii_whitespace().collect();
                Val::Str(words.join(" "))
            }
            Func::Contains => Val::Bool(s(self, 0).contains(&s(self, 1))),
            Func::StartsWith => Val::Bool(s(self, 0).starts_with(&s(self, 1))),
            Func::EndsWith => Val::Bool(s(self, 0).ends_with(&s(self, 1))),
            Func::Uuid if v.is_empty() => Val::Str(self.uuid_v4()),
            Func::Uuid => {
                let len = n(self, 0);
                if len > 4096.0 {
                    return err(func, "the length must be at most 4096");
                }
                Val::Str(self.random_string(usize::try_from(trunc_i64(len)).unwrap_or(0)))
            }
            Func::Digest => {
                let alg = digest::Algorithm::from_name(&s(self, 1)).or_else(|e| err(func, e))?;
                let enc = match v.get(2) {
                    Some(e) => {
                        digest::Encoding::from_name(&self.string(e)).or_else(|e| err(func, e))?
                    }
                    None => digest::Encoding::Base64,
                };
                let src = s(self, 0);
                self.charge_str(&src)?;
                Val::Str(enc.encode(&alg.digest(src.as_bytes())))
            }
            Func::Pulldata => self.pulldata(&s(self, 0), &s(self, 1), &s(self, 2), &s(self, 3))?,
            Func::Base64Decode => {
                let bytes = digest::base64_decode(s(self, 0).trim()).unwrap_or_default();
                Val::Str(String::from_utf8_lossy(&bytes).into_owned())
            }
            // ---- booleans
            Func::Once => {
                let current = self.node_str(self.ctx.context);
                if current.is_empty() {
                    v[0].clone()
                } else {
                    Val::Str(current)
                }
            }
            Func::True => Val::Bool(true),
            Func::False => Val::Bool(false),
            Func::Boolean => Val::Bool(self.boolean(&v[0])),
            // Spec: true only for "true" (any case, as JavaRosa) and "1".
            Func::BooleanFromString => {
                let text = s(self, 0);
                Val::Bool(text.eq_ignore_ascii_case("true") || text == "1")
            }
            Func::Not => Val::Bool(!self.boolean(&v[0])),
            Func::Regex => {
                let subject = s(self, 0);
                self.charge_str(&subject)?;
                let matched = match &c.regex {
                    Some(re) => re.is_match(&subject),
                    None => {
                        let pattern = s(self, 1);
                        self.charge(64 + pattern.len() as u64)?;
                        let re = super::parse::compile_regex(&pattern).or_else(|e| err(func, e))?;
                        re.is_match(&subject)
                    }
                };
                Val::Bool(matched)
            }
            Func::Checklist => {
                let (min, max) = (trunc_i64(n(self, 0)), trunc_i64(n(self, 1)));
                let mut count = 0_i64;
                for x in &v[2..] {
                    count += self.truths(x)?.into_iter().filter(|t| *t).count() as i64;
                }
                Val::Bool((min < 0 || count >= min) && (max < 0 || count <= max))
            }
            Func::WeightedChecklist => {
                let (min, max) = (n(self, 0), n(self, 1));
                let mut total = 0.0;
                if let [_, _, Val::Nodes(flags), Val::Nodes(weights)] = v {
                    if flags.len() != weights.len() {
                        return err(func, "the answers and weights must have as many nodes");
                    }
                    for (fl, w) in flags.iter().zip(weights) {
                        if self.node_truth(*fl) {
                            total += self.node_num(*w);
                        }
                    }
                } else {
                    for pair in v[2..].chunks(2) {
                        if let [flag, weight] = pair
                            && self.boolean(flag)
                        {
                            total += self.number(weight);
                        }
                    }
                }
                Val::Bool((min < 0.0 || total >= min) && (max < 0.0 || total <= max))
            }
            // ---- numbers
            Func::Number => Val::Num(n(self, 0)),
            Func::Random => Val::Num(self.random_f64()),
            Func::Int => Val::Num(n(self, 0).trunc()),
            // XPath 1.0 sum; as JavaRosa, values that are not numbers (unanswered) are skipped.
            Func::Sum => {
                let Val::Nodes(ns) = &v[0] else {
                    return err(
                        func,
                        format!(
                            "needs a node-set such as ${{repeat_question}}, not {}",
                            describe(&v[0])
                        ),
                    );
                };
                self.charge(ns.len() as u64)?;
                Val::Num(
                    ns.iter()
                        .map(|x| self.node_num(*x))
                        .filter(|x| !x.is_nan())
                        .sum(),
                )
            }
            // As JavaRosa: every value of every argument, non-numbers skipped, NaN if none.
            Func::Max | Func::Min => {
                let mut best: Option<f64> = None;
                for x in v {
                    for num in self.numbers(x)? {
                        if num.is_nan() {
                            continue;
                        }
                        best = Some(match best {
                            None => num,
                            Some(b) if func == Func::Max => b.max(num),
                            Some(b) => b.min(num),
                        });
                    }
                }
                Val::Num(best.unwrap_or(f64::NAN))
            }
            Func::Round => {
                let places = if v.len() > 1 {
                    trunc_i64(n(self, 1))
                } else {
                    0
                };
                Val::Num(round(n(self, 0), places))
            }
            Func::Pow => Val::Num(n(self, 0).powf(n(self, 1))),
            Func::Log => Val::Num(n(self, 0).ln()),
            Func::Log10 => Val::Num(n(self, 0).log10()),
            Func::Abs => Val::Num(n(self, 0).abs()),
            Func::Sin => Val::Num(n(self, 0).sin()),
            Func::Cos => Val::Num(n(self, 0).cos()),
            Func::Tan => Val::Num(n(self, 0).tan()),
            Func::Asin => Val::Num(n(self, 0).asin()),
            Func::Acos => Val::Num(n(self, 0).acos()),
            Func::Atan => Val::Num(n(self, 0).atan()),
            Func::Atan2 => Val::Num(n(self, 0).atan2(n(self, 1))),
            Func::Sqrt => Val::Num(n(self, 0).sqrt()),
            Func::Exp => Val::Num(n(self, 0).exp()),
            Func::Exp10 => Val::Num(10f64.powf(n(self, 0))),
            Func::Pi => Val::Num(std::f64::consts::PI),
            // ---- node-sets
            Func::Count | Func::CountNonEmpty => {
                let Some(values) = self.strings(&v[0])? else {
                    return err(
                        func,
                        format!(
                            "needs a node-set such as ${{repeat}} or a path, not {}",
                            describe(&v[0])
                        ),
                    );
                };
                let counted = if func == Func::Count {
                    values.len()
                } else {
                    values.iter().filter(|x| !x.is_empty()).count()
                };
                Val::Num(counted as f64)
            }
            Func::Position => match v.first() {
                None if f.pos > 0 => Val::Num(f.pos as f64),
                None => Val::Num(self.sibling_position(f.node).0 as f64),
                Some(Val::Nodes(ns)) => Val::Num(
                    ns.first()
                        .map_or(0.0, |x| self.sibling_position(*x).0 as f64),
                ),
                Some(other) => {
                    return err(
                        func,
                        format!("takes a node such as ${{repeat}}, not {}", describe(other)),
                    );
                }
            },
            Func::Last if f.pos > 0 => Val::Num(f.size as f64),
            Func::Last => Val::Num(self.sibling_position(f.node).1 as f64),
            Func::Instance => {
                let id = s(self, 0);
                let doc = self
                    .inst
                    .secondary(&id)
                    .ok_or(EvalError::NoSuchInstance(id))?;
                Val::Nodes(vec![doc])
            }
            Func::Current => Val::Nodes(vec![self.ctx.context]),
            // ---- dates and times
            Func::Today => Val::Str(format_date(self.ctx.now.date())),
            Func::Now => Val::Str(format_datetime(self.ctx.now)),
            Func::Date => match self.date_arg(func, &v[0])? {
                DateArg::Empty => Val::Str(String::new()),
                DateArg::Days(d) => Val::Str(format_date(self.day(func, d)?)),
                DateArg::Temporal(Temporal::Time(..)) => {
                    return err(func, "a time has no date; pass a date or dateTime");
                }
                DateArg::Temporal(t) => Val::Str(format_date(in_zone(t, self.zone()).date())),
            },
            Func::DateTime => match self.date_arg(func, &v[0])? {
                DateArg::Empty => Val::Str(String::new()),
                DateArg::Days(d) => Val::Str(format_datetime(self.instant(func, d)?)),
                DateArg::Temporal(Temporal::Time(..)) => {
                    return err(func, "a time has no date; pass a date or dateTime");
                }
                DateArg::Temporal(t) => {
                    let local = in_zone(t, self.zone());
                    Val::Str(format_datetime(local.assume_offset(self.zone())))
                }
            },
            Func::DecimalDateTime => match self.date_arg(func, &v[0])? {
                DateArg::Empty => Val::Str(String::new()),
                DateArg::Days(d) => Val::Num(d),
                DateArg::Temporal(Temporal::Time(..)) => {
                    return err(func, "a time has no date; use decimal-time()");
                }
                DateArg::Temporal(t) => Val::Num(temporal_days_of(t)),
            },
            Func::DecimalTime => match self.date_arg(func, &v[0])? {
                DateArg::Empty => Val::Str(String::new()),
                DateArg::Days(d) => Val::Num(d - d.floor()),
                DateArg::Temporal(t) => Val::Num(time_fraction(in_zone(t, self.zone()).time())),
            },
            Func::FormatDate | Func::FormatDateTime => {
                let local = match self.date_arg(func, &v[0])? {
                    DateArg::Empty => return Ok(Val::Str(String::new())),
                    // format-date reads a number as date() does, format-date-time as date-time().
                    DateArg::Days(d) if func == Func::FormatDate => {
                        time::PrimitiveDateTime::new(self.day(func, d)?, time::Time::MIDNIGHT)
                    }
                    DateArg::Days(d) => {
                        let i = self.instant(func, d)?;
                        time::PrimitiveDateTime::new(i.date(), i.time())
                    }
                    DateArg::Temporal(t) => in_zone(t, self.zone()),
                };
                let format = s(self, 1);
                self.charge_str(&format)?;
                Val::Str(convert::format_with(local, &format).or_else(|e| err(func, e))?)
            }
            // ---- selects
            Func::Selected => {
                let item = s(self, 1);
                let item = item.trim();
                Val::Bool(s(self, 0).split_whitespace().any(|x| x == item))
            }
            // 0-based, as JavaRosa; outside the list (or negative) gives "".
            Func::SelectedAt => {
                let list = s(self, 0);
                let index = usize::try_from(trunc_i64(n(self, 1))).ok();
                let item = index.and_then(|i| list.split_whitespace().nth(i));
                Val::Str(item.unwrap_or_default().to_owned())
            }
            Func::CountSelected => Val::Num(s(self, 0).split_whitespace().count() as f64),
            Func::ChoiceName => {
                let value = s(self, 0);
                let question = question_name(&s(self, 1));
                let label = self.inst.choice_label(&question, &value, self.ctx.context);
                Val::Str(label.unwrap_or_default())
            }
            // ---- geography
            Func::Area => {
                let pts = self.geo_points(func, &v[0], true)?;
                Val::Num(geo::area(&pts))
            }
            Func::Distance => {
                let pts = if v.len() == 1 {
                    self.geo_points(func, &v[0], false)?
                } else {
                    let mut pts = Vec::new();
                    for x in v {
                        let text = self.string(x);
                        pts.push(geo::point(&text).or_else(|e| err(func, e))?);
                    }
                    pts
                };
                Val::Num(geo::distance(&pts))
            }
        };
        if let Val::Str(text) = &out {
            self.charge_str(text)?;
        }
        Ok(out)
    }

    fn zone(&self) -> time::UtcOffset {
        self.ctx.now.offset()
    }

    fn day(&self, func: Func, days: f64) -> R<time::Date> {
        date_from_days(days.trunc()).map_or_else(
            || err(func, "the number of days is out of range for a date"),
            Ok,
        )
    }

    fn instant(&self, func: Func, days: f64) -> R<time::OffsetDateTime> {
        match instant_from_days(days) {
            Some(i) => Ok(i.to_offset(self.zone())),
            None => err(func, "the number of days is out of range for a dateTime"),
        }
    }

    /// Unpacks a date argument: a number of days, a date, dateTime or time (typed node or
    /// text), or empty (`""`, NaN, no node) which the date functions pass through as `""`.
    fn date_arg(&self, func: Func, v: &Val<I::Node>) -> R<DateArg> {
        let text = match v {
            Val::Num(x) if x.is_nan() => return Ok(DateArg::Empty),
            Val::Num(x) => return Ok(DateArg::Days(*x)),
            Val::Bool(_) => return err(func, "a boolean is not a date"),
            Val::Nodes(ns) => match ns.first().map(|x| self.inst.value(*x)) {
                None | Some(NodeValue::Empty) => return Ok(DateArg::Empty),
                Some(NodeValue::Number(x)) if x.is_nan() => return Ok(DateArg::Empty),
                Some(NodeValue::Number(x)) => return Ok(DateArg::Days(x)),
                Some(NodeValue::Text(t)) => t,
                Some(typed) => {
                    return node_temporal(&typed)
                        .map(DateArg::Temporal)
                        .map_or_else(|| err(func, "the value is not a date"), Ok);
                }
            },
            other => self.string(other),
        };
        let text = text.trim();
        if text.is_empty() {
            return Ok(DateArg::Empty);
        }
        if let Some(t) = parse_temporal(text) {
            return Ok(DateArg::Temporal(t));
        }
        // A calculation stores `today() + 1` as text: read a plain number as days.
        let days = convert::parse_number(text);
        if days.is_nan() {
            err(
                func,
                format!(
                    "{text:?} is not a date; ODK dates look like 2024-03-01 and dateTimes like 2024-03-01T14:30:00.000+02:00"
                ),
            )
        } else {
            Ok(DateArg::Days(days))
        }
    }

    /// Every string of the arguments, node-sets giving all their nodes.
    fn flatten_strings(&mut self, v: &[Val<I::Node>]) -> R<Vec<String>> {
        let mut out = Vec::new();
        for x in v {
            match self.strings(x)? {
                Some(all) => out.extend(all),
                None => out.push(self.string(x)),
            }
        }
        Ok(out)
    }

    fn numbers(&mut self, v: &Val<I::Node>) -> R<Vec<f64>> {
        Ok(match v {
            Val::Nodes(ns) => {
                self.charge(ns.len() as u64)?;
                ns.iter().map(|x| self.node_num(*x)).collect()
            }
            Val::Attrs(a) => a.iter().map(|x| convert::parse_number(x)).collect(),
            other => vec![self.number(other)],
        })
    }

    /// JavaRosa's `toBoolean` of a node's typed value: numbers are true unless 0 or NaN,
    /// everything else unless empty.
    fn node_truth(&self, n: I::Node) -> bool {
        match self.inst.value(n) {
            NodeValue::Number(x) => x != 0.0 && !x.is_nan(),
            other => !convert::node_string(&other).is_empty(),
        }
    }

    fn truths(&mut self, v: &Val<I::Node>) -> R<Vec<bool>> {
        Ok(match v {
            Val::Nodes(ns) => {
                self.charge(ns.len() as u64)?;
                ns.iter().map(|x| self.node_truth(*x)).collect()
            }
            Val::Attrs(a) => a.iter().map(|x| !x.is_empty()).collect(),
            other => vec![self.boolean(other)],
        })
    }

    /// Spec: `instance(id)/root/item[keycol = key]/col`, the first match, or "".
    fn pulldata(&mut self, id: &str, col: &str, keycol: &str, key: &str) -> R<Val<I::Node>> {
        let doc = self
            .inst
            .secondary(id)
            .ok_or_else(|| EvalError::NoSuchInstance(id.to_owned()))?;
        for root in self.inst.children(doc) {
            let items = self.inst.children(root);
            self.charge(items.len() as u64)?;
            for item in items {
                let fields = self.inst.children(item);
                self.charge(fields.len() as u64)?;
                let field =
                    |name: &str| fields.iter().copied().find(|c| self.inst.name(*c) == name);
                if field(keycol).is_some_and(|k| self.node_str(k) == key) {
                    return Ok(Val::Str(
                        field(col).map(|c| self.node_str(c)).unwrap_or_default(),
                    ));
                }
            }
        }
        Ok(Val::Str(String::new()))
    }

    /// Points of a node-set of geopoints (two or more nodes), or of one geoshape/geotrace.
    fn geo_points(&mut self, func: Func, v: &Val<I::Node>, shape: bool) -> R<Vec<(f64, f64)>> {
        let texts = match self.strings(v)? {
            Some(all) if all.len() >= 2 => all,
            Some(all) => {
                let one = all.into_iter().next().unwrap_or_default();
                one.split(';').map(str::to_owned).collect()
            }
            None if shape || matches!(v, Val::Str(_)) => {
                self.string(v).split(';').map(str::to_owned).collect()
            }
            None => {
                return err(
                    func,
                    format!(
                        "takes a geopoint, geotrace or geoshape, not {}",
                        describe(v)
                    ),
                );
            }
        };
        let mut pts = Vec::new();
        for t in texts.iter().filter(|t| !t.trim().is_empty()) {
            pts.push(geo::point(t).or_else(|e| err(func, e))?);
        }
        self.charge(pts.len() as u64)?;
        Ok(pts)
    }

    /// SplitMix64: small, fast and good enough for `random()` and `uuid()` in a form.
    fn next_u64(&mut self) -> u64 {
        self.rng = self.rng.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn random_f64(&mut self) -> f64 {
        // 53 random bits → [0, 1).
        (self.next_u64() >> 11) as f64 / (1_u64 << 53) as f64
    }

    fn uuid_v4(&mut self) -> String {
        let bits = (u128::from(self.next_u64()) << 64) | u128::from(self.next_u64());
        uuid::Builder::from_random_bytes(bits.to_be_bytes())
            .into_uuid()
            .hyphenated()
            .to_string()
    }

    fn random_string(&mut self, len: usize) -> String {
        const ALPHABET: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
        (0..len)
            .map(|_| char::from(ALPHABET[(self.next_u64() % ALPHABET.len() as u64) as usize]))
            .collect()
    }
}

/// The question a `jr:choice-name()` second argument names: `${q}`, or a path's last step.
fn question_name(arg: &str) -> String {
    let arg = arg.trim();
    if let Some(inner) = arg.strip_prefix("${").and_then(|r| r.strip_suffix('}'))
        && let Some((name, _)) = super::lex::parse_reference(inner)
    {
        return name;
    }
    arg.rsplit('/').next().unwrap_or(arg).to_owned()
}

/// ODK's `round()`: XPath 1.0's rounding (halves towards +∞, so round(-2.5) = -2) at `places`
/// decimals, on the shortest decimal form of the number as JavaRosa does (so
/// round(1.005, 2) = 1.01); negative places round to tens, hundreds, …; beyond ±30 is NaN.
pub(super) fn round(x: f64, places: i64) -> f64 {
    if !x.is_finite() {
        return x;
    }
    if !(-30..=30).contains(&places) {
        return f64::NAN;
    }
    if places < 0 {
        let scale = 10f64.powi(i32::try_from(-places).unwrap_or(0));
        return ((x / scale) + 0.5).floor() * scale;
    }
    let places = usize::try_from(places).unwrap_or(0);
    let text = x.abs().to_string();
    let (int_part, frac) = text.split_once('.').unwrap_or((&text, ""));
    if frac.len() <= places {
        return x;
    }
    let next = frac.as_bytes()[places];
    let rest_nonzero = frac.as_bytes()[places + 1..].iter().any(|&b| b != b'0');
    let up = if x < 0.0 {
        next > b'5' || (next == b'5' && rest_nonzero)
    } else {
        next >= b'5'
    };
    let mut digits: Vec<u8> = int_part.bytes().chain(frac.bytes().take(places)).collect();
    if up {
        let mut i = digits.len();
        loop {
            if i == 0 {
                digits.insert(0, b'1');
                break;
            }
            i -= 1;
            if digits[i] == b'9' {
                digits[i] = b'0';
            } else {
                digits[i] += 1;
                break;
            }
        }
    }
    let split = digits.len() - places;
    let rounded = format!(
        "{}.{}",
        String::from_utf8_lossy(&digits[..split]),
        String::from_utf8_lossy(&digits[split..])
    );
    let magnitude: f64 = rounded.trim_end_matches('.').parse().unwrap_or(f64::NAN);
    if x < 0.0 { -magnitude } else { magnitude }
}
