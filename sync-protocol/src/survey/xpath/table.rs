//! The function table: every function of the ODK XForms spec's "XPath Functions" table that
//! the engine evaluates, with the argument counts ODK accepts, and advice for names it lacks.

/// How many arguments a function takes.
#[derive(Debug, Clone, Copy)]
pub(super) enum Arity {
    Exactly(usize),
    Between(usize, usize),
    AtLeast(usize),
    /// At least two, an even number (`weighted-checklist`).
    EvenAtLeast2,
    /// 3, 5 or 7 (`indexed-repeat`: target plus up to three repeat/index pairs).
    IndexedRepeat,
}

impl Arity {
    pub(super) fn accepts(self, n: usize) -> bool {
        match self {
            Arity::Exactly(k) => n == k,
            Arity::Between(a, b) => (a..=b).contains(&n),
            Arity::AtLeast(k) => n >= k,
            Arity::EvenAtLeast2 => n >= 2 && n.is_multiple_of(2),
            Arity::IndexedRepeat => matches!(n, 3 | 5 | 7),
        }
    }

    pub(super) fn describe(self) -> &'static str {
        match self {
            Arity::Exactly(0) => "no arguments",
            Arity::Exactly(1) => "1 argument",
            Arity::Exactly(2) => "2 arguments",
            Arity::Exactly(3) => "3 arguments",
            Arity::Exactly(_) => "4 arguments",
            Arity::Between(0, 1) => "0 or 1 argument",
            Arity::Between(1, 2) => "1 or 2 arguments",
            Arity::Between(2, _) => "2 or 3 arguments",
            Arity::Between(..) => "a different number of arguments",
            Arity::AtLeast(1) => "at least 1 argument",
            Arity::AtLeast(_) => "at least 2 arguments",
            Arity::EvenAtLeast2 => "an even number of arguments, at least 2",
            Arity::IndexedRepeat => "3, 5 or 7 arguments (a field, then repeat and index pairs)",
        }
    }
}

macro_rules! functions {
    ($($variant:ident $name:literal $arity:expr;)*) => {
        /// A function of the ODK XForms spec's table.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Func { $($variant,)* }

        impl Func {
            /// The function's name as written in an expression.
            pub fn name(self) -> &'static str {
                match self { $(Func::$variant => $name,)* }
            }

            /// The function named `name`, if ODK has it.
            pub fn from_name(name: &str) -> Option<Func> {
                match name { $($name => Some(Func::$variant),)* _ => None }
            }

            pub(super) fn arity(self) -> Arity {
                match self { $(Func::$variant => $arity,)* }
            }
        }
    };
}

functions! {
    // String functions
    String "string" Arity::Exactly(1);
    Concat "concat" Arity::AtLeast(1);
    Join "join" Arity::AtLeast(1);
    Substr "substr" Arity::Between(2, 3);
    SubstringBefore "substring-before" Arity::Exactly(2);
    SubstringAfter "substring-after" Arity::Exactly(2);
    Translate "translate" Arity::Exactly(3);
    StringLength "string-length" Arity::Between(0, 1);
    NormalizeSpace "normalize-space" Arity::Between(0, 1);
    Contains "contains" Arity::Exactly(2);
    StartsWith "starts-with" Arity::Exactly(2);
    EndsWith "ends-with" Arity::Exactly(2);
    Uuid "uuid" Arity::Between(0, 1);
    Digest "digest" Arity::Between(2, 3);
    Pulldata "pulldata" Arity::Exactly(4);
    Base64Decode "base64-decode" Arity::Exactly(1);
    // Boolean functions
    If "if" Arity::Exactly(3);
    Coalesce "coalesce" Arity::Exactly(2);
    Once "once" Arity::Exactly(1);
    True "true" Arity::Exactly(0);
    False "false" Arity::Exactly(0);
    Boolean "boolean" Arity::Exactly(1);
    BooleanFromString "boolean-from-string" Arity::Exactly(1);
    Not "not" Arity::Exactly(1);
    Regex "regex" Arity::Exactly(2);
    Checklist "checklist" Arity::AtLeast(2);
    WeightedChecklist "weighted-checklist" Arity::EvenAtLeast2;
    // Number functions
    Number "number" Arity::Exactly(1);
    Random "random" Arity::Exactly(0);
    Int "int" Arity::Exactly(1);
    Sum "sum" Arity::Exactly(1);
    Max "max" Arity::AtLeast(1);
    Min "min" Arity::AtLeast(1);
    Round "round" Arity::Between(1, 2);
    Pow "pow" Arity::Exactly(2);
    Log "log" Arity::Exactly(1);
    Log10 "log10" Arity::Exactly(1);
    Abs "abs" Arity::Exactly(1);
    Sin "sin" Arity::Exactly(1);
    Cos "cos" Arity::Exactly(1);
    Tan "tan" Arity::Exactly(1);
    Asin "asin" Arity::Exactly(1);
    Acos "acos" Arity::Exactly(1);
    Atan "atan" Arity::Exactly(1);
    Atan2 "atan2" Arity::Exactly(2);
    Sqrt "sqrt" Arity::Exactly(1);
    Exp "exp" Arity::Exactly(1);
    Exp10 "exp10" Arity::Exactly(1);
    Pi "pi" Arity::Exactly(0);
    // Node-set functions
    Count "count" Arity::Exactly(1);
    CountNonEmpty "count-non-empty" Arity::Exactly(1);
    Position "position" Arity::Between(0, 1);
    Last "last" Arity::Exactly(0);
    Instance "instance" Arity::Exactly(1);
    Current "current" Arity::Exactly(0);
    // Date and time functions
    Today "today" Arity::Exactly(0);
    Now "now" Arity::Exactly(0);
    FormatDate "format-date" Arity::Exactly(2);
    FormatDateTime "format-date-time" Arity::Exactly(2);
    Date "date" Arity::Exactly(1);
    DateTime "date-time" Arity::Exactly(1);
    DecimalDateTime "decimal-date-time" Arity::Exactly(1);
    DecimalTime "decimal-time" Arity::Exactly(1);
    // Select functions
    Selected "selected" Arity::Exactly(2);
    SelectedAt "selected-at" Arity::Exactly(2);
    CountSelected "count-selected" Arity::Exactly(1);
    ChoiceName "jr:choice-name" Arity::Exactly(2);
    // Repeat functions
    IndexedRepeat "indexed-repeat" Arity::IndexedRepeat;
    // Geographic functions
    Area "area" Arity::Exactly(1);
    Distance "distance" Arity::AtLeast(1);
}

/// Advice for a function that ODK does not have.
pub(super) fn unknown_function_hint(name: &str) -> String {
    let hint = match name {
        "substring" => "use `substr(value, start, end)`, whose indexes start at 0",
        "lower-case" | "upper-case" => {
            "ODK has no case conversion; use `translate(value, 'ABC…', 'abc…')`"
        }
        "jr:itext" | "randomize" => "it is not supported here",
        "choice-name" => "write it as `jr:choice-name(value, '${question}')`",
        "is-selected" => "use `selected(list, value)`",
        "floor" | "ceiling" => "use `int()` or `round()`",
        _ => "check the spelling against the functions of the ODK XForms spec",
    };
    hint.to_owned()
}
