//! Expressions for the `filter` and `derive` processors.
//!
//! Expressions are written in [CEL](https://github.com/google/cel-spec), the Common
//! Expression Language, and evaluated with the [`cel`] crate. An expression refers to the
//! record's fields by name:
//!
//! ```text
//! filter:  amount > 100 && merchant.startsWith("acme")
//! filter:  country in ["FR", "DE"] && !(status == "test")
//! derive:  amount * 1.2
//! derive:  created_at > timestamp("2026-01-01T00:00:00Z") ? "new" : "old"
//! ```
//!
//! # Language
//!
//! The standard CEL language and library: arithmetic (`+ - * / %`), comparisons,
//! `&& || !`, the conditional `c ? a : b`, `in`, list and map literals, the macros
//! `has`, `all`, `exists`, `exists_one`, `map` and `filter`, the conversions `int()`,
//! `double()`, `string()`, `timestamp()`, `duration()`, `type()`, the string functions
//! `size`, `contains`, `startsWith`, `endsWith`, `matches` (RE2-style regular
//! expressions), the timestamp accessors (`getFullYear()`, `getHours("Europe/Paris")`,
//! ...). The CEL extension libraries for strings (`lowerAscii`, `upperAscii`, `trim`,
//! `replace`, `split`, `substring`, `indexOf`, ...), math (`math.round`, `math.abs`,
//! `math.greatest`, ...) and lists are enabled too.
//!
//! Every identifier must be a field of the stream's schema (or a variable introduced by
//! a macro such as `exists(x, ...)`); anything else is rejected when the pipeline is
//! configured, naming the unknown identifier. Unknown *functions* are only detected
//! when the expression runs.
//!
//! # Types
//!
//! | field type | CEL type | notes |
//! |---|---|---|
//! | `int` | `int` | |
//! | `float` | `double` | |
//! | `string` | `string` | |
//! | `bool` | `bool` | |
//! | `timestamp` | `google.protobuf.Timestamp` | UTC |
//! | `date` | `google.protobuf.Timestamp` | midnight UTC of that day; compare with `timestamp("2026-01-01T00:00:00Z")` |
//! | a missing value | `null` | |
//!
//! **Numbers.** CEL keeps `int` and `double` apart, but Freshet smooths over the cases
//! where that only gets in the way:
//!
//! * comparisons and equality mix them freely, as CEL itself allows: `amount > 100`
//!   and `amount == 3` work on a `float` field, `quantity < 2.5` on an `int` one;
//! * in arithmetic (`+ - * /`) where one side is known to be a `double` (a `float` field,
//!   a literal such as `1.5`, `double(...)`, or arithmetic on those) and the other an
//!   `int` (an `int` field, a literal such as `100`, `int(...)`, or arithmetic on those),
//!   the `int` side is converted to `double` when the expression is compiled:
//!   `amount * 100` and `price * quantity` give a `double`. Plain CEL would reject these
//!   as "no matching overload", so the rewrite never changes an expression that worked.
//!   Integer arithmetic stays integer: `quantity / 2` truncates; write
//!   `double(quantity) / 2` for a fraction. `%` is only defined on integers. Where the
//!   types are not known in advance (inside a macro's variables, for instance), use
//!   `double(x)` or `int(x)` explicitly.
//!
//! **Nulls.** A missing value is `null`, which is only equal to `null` and supports no
//! other operator: `amount > 100` fails on a record whose `amount` is null, and the
//! failure is reported like any other evaluation error (for a filter, the record goes to
//! the dead-letter path). Guard nullable fields: `amount != null && amount > 100`, or
//! `merchant == null ? "unknown" : merchant`.
//!
//! **Derived values** are converted to the declared type of the derived field with the
//! usual ingestion coercions ([`freshet_core::FieldType::coerce`]): an `int` result fits
//! a `float` field, a `double` with no fractional part fits an `int` field (`3.5` does
//! not), a `null` result gives a missing value. For a `timestamp` field the result may
//! be a CEL timestamp, an RFC 3339 string or an integer of milliseconds since the epoch;
//! for a `date` field a CEL timestamp gives its UTC calendar day. A `string` field
//! accepts a timestamp (as RFC 3339) and numbers and booleans (as their text).
//!
//! **Errors** (division by zero, an operator applied to `null`, a failing conversion)
//! name the operation and the types involved, never the values of the record, which may
//! be personal data.
//!
//! # Performance
//!
//! An expression is parsed and checked once, by [`Expr::compile`]; [`Expr::eval`] and
//! friends only bind the fields the expression references, without copying strings, and
//! can be called concurrently from any number of tasks.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, LazyLock};

use cel::common::ast::{CallExpr, EntryExpr, Expr as Ast, IdedExpr, LiteralValue, operators};
use cel::common::types::{CelBool, CelDouble, CelInt, CelNull, CelString, CelTimestamp, CelUInt};
use cel::common::value::{CowVal, Val};
use cel::context::VariableResolver;
use cel::{Context, Env, ExecutionError};
use freshet_core::{FieldType, Schema, Value};

/// Why an expression could not be compiled or evaluated.
///
/// Messages name fields, functions, operators and CEL types, never the values of a record.
#[derive(Debug, thiserror::Error)]
pub enum ExprError {
    /// The expression is not valid CEL.
    #[error("invalid expression: {0}")]
    Syntax(String),
    /// The expression names an identifier that is not a field of the schema.
    #[error("unknown field `{name}` in expression; the stream's fields are: {known}")]
    UnknownField {
        /// The identifier as written in the expression.
        name: String,
        /// The declared field names, comma-separated.
        known: String,
    },
    /// The expression language could not be set up (a bug, not a user error).
    #[error("the expression runtime could not be initialised: {0}")]
    Runtime(String),
    /// The row is shorter than the schema the expression was compiled against.
    #[error("field `{field}` is at position {index}, but the row has only {len} values")]
    RowShape {
        /// The referenced field.
        field: String,
        /// Its position in the schema.
        index: usize,
        /// The row's length.
        len: usize,
    },
    /// A referenced field holds a value expressions cannot use.
    #[error("field `{field}` holds {what}, which expressions cannot use")]
    UnsupportedValue {
        /// The referenced field.
        field: String,
        /// What it holds (a kind, never the value).
        what: &'static str,
    },
    /// Evaluation failed, e.g. division by zero or an operator applied to `null`.
    #[error("expression evaluation failed: {0}")]
    Eval(String),
    /// A filter expression evaluated to something other than a bool.
    #[error("a filter expression must evaluate to a bool, got {got}")]
    NotBool {
        /// The CEL type of the result.
        got: String,
    },
    /// A derived value could not be converted to the declared field type.
    #[error("cannot store the expression's {got} result as {target}: {reason}")]
    Convert {
        /// The declared type.
        target: FieldType,
        /// The CEL type of the result.
        got: String,
        /// Why the conversion failed (never the value).
        reason: String,
    },
}

/// A compiled CEL expression over the fields of one schema.
///
/// Compile once with [`Expr::compile`], then evaluate per record; `Expr` is `Send + Sync`
/// and evaluation takes `&self`, so one instance can serve many tasks.
pub struct Expr {
    source: String,
    ast: IdedExpr,
    /// Referenced field names, in order of first appearance.
    fields: Vec<String>,
    /// The schema position of each of `fields`.
    indices: Vec<usize>,
}

impl fmt::Debug for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Expr")
            .field("source", &self.source)
            .field("fields", &self.fields)
            .finish()
    }
}

/// The CEL environment and root context every expression shares.
struct Runtime {
    env: Arc<Env>,
    root: Context<'static, 'static>,
}

/// Namespaces of the functions of the enabled libraries: `math.round(x)` calls a
/// function rather than selecting `round` on a field named `math`.
const FUNCTION_NAMESPACES: [&str; 4] = ["math", "strings", "lists", "optional"];

static RUNTIME: LazyLock<Result<Runtime, String>> = LazyLock::new(|| {
    let mut env = Env::stdlib();
    env.add_extension(cel::extensions::strings)
        .and_then(|()| env.add_extension(cel::extensions::math))
        .and_then(|()| env.add_extension(cel::extensions::lists))
        .map_err(|e| e.to_string())?;
    let env = Arc::new(env);
    let root = Context::with_env(Arc::clone(&env));
    Ok(Runtime { env, root })
});

fn runtime() -> Result<&'static Runtime, ExprError> {
    RUNTIME.as_ref().map_err(|e| ExprError::Runtime(e.clone()))
}

impl Expr {
    /// Parse `src` and check that every identifier it references is a field of `schema`.
    ///
    /// Fails with [`ExprError::Syntax`] (with line and column) if `src` is not valid CEL,
    /// and with [`ExprError::UnknownField`] naming the first identifier that is neither a
    /// field of `schema`, a macro variable, nor a CEL type name. Mixed `int`/`double`
    /// arithmetic is made to work as described in the [module documentation](self).
    pub fn compile(src: &str, schema: &Schema) -> Result<Self, ExprError> {
        let rt = runtime()?;
        let mut ast = rt.env.parser().parse(src).map_err(|errors| {
            let msg = errors
                .errors
                .iter()
                .map(|e| format!("line {}, column {}: {}", e.pos.0, e.pos.1, e.msg))
                .collect::<Vec<_>>()
                .join("; ");
            ExprError::Syntax(msg)
        })?;

        let mut analyzer = Analyzer {
            schema,
            env: &rt.env,
            bound: Vec::new(),
            fields: Vec::new(),
            unknown: None,
        };
        analyzer.visit(&mut ast);
        if let Some(name) = analyzer.unknown {
            let known = schema
                .fields()
                .iter()
                .map(|f| f.name.as_str())
                .collect::<Vec<_>>()
                .join(", ");
            return Err(ExprError::UnknownField { name, known });
        }
        let fields = analyzer.fields;
        let indices = fields
            .iter()
            .map(|f| {
                schema.index_of(f).ok_or_else(|| ExprError::UnknownField {
                    name: f.clone(),
                    known: String::new(),
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Expr {
            source: src.to_owned(),
            ast,
            fields,
            indices,
        })
    }

    /// The expression as written.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The schema fields the expression references, in order of first appearance.
    pub fn referenced_fields(&self) -> &[String] {
        &self.fields
    }

    /// Evaluate against `row`, aligned to the schema given at compile time, and return
    /// the CEL value. Only the referenced fields are bound.
    pub fn eval(&self, row: &[Value]) -> Result<cel::Value, ExprError> {
        self.with_result(row, |v| cel::Value::try_from(v).map_err(sanitize))
    }

    /// Evaluate a filter: `Ok(true)` keeps the record. A result other than a bool
    /// (`null` included) is an [`ExprError::NotBool`].
    pub fn eval_bool(&self, row: &[Value]) -> Result<bool, ExprError> {
        self.with_result(row, |v| match v.downcast_ref::<CelBool>() {
            Some(b) => Ok(*b.inner()),
            None => Err(ExprError::NotBool { got: type_name(v) }),
        })
    }

    /// Evaluate a derived field and convert the result to its declared type `ty`
    /// (see the module documentation for the conversions). A CEL `null` gives
    /// [`Value::Null`].
    pub fn eval_as(&self, row: &[Value], ty: FieldType) -> Result<Value, ExprError> {
        self.with_result(row, |v| to_field_value(v, ty))
    }

    /// Bind the referenced fields of `row`, evaluate, and hand the result to `f`.
    fn with_result<T>(
        &self,
        row: &[Value],
        f: impl FnOnce(&dyn Val) -> Result<T, ExprError>,
    ) -> Result<T, ExprError> {
        self.check_row(row)?;
        let rt = runtime()?;
        let vars = RowVars {
            names: &self.fields,
            indices: &self.indices,
            row,
        };
        let ctx = Context::Child {
            parent: &rt.root,
            variables: BTreeMap::new(),
            resolver: Some(&vars),
        };
        let result = cel::Value::resolve_val(&self.ast, &ctx).map_err(sanitize)?;
        f(&*result)
    }

    /// Every referenced field exists in `row` and holds a value CEL can represent, so
    /// that binding it cannot fail.
    fn check_row(&self, row: &[Value]) -> Result<(), ExprError> {
        for (name, &index) in self.fields.iter().zip(&self.indices) {
            let what = match row.get(index) {
                None => {
                    return Err(ExprError::RowShape {
                        field: name.clone(),
                        index,
                        len: row.len(),
                    });
                }
                Some(Value::Nested) => "an object or array",
                Some(Value::Timestamp(t)) if timestamp_from_micros(*t).is_none() => {
                    "a timestamp out of range"
                }
                Some(Value::Date(d)) if timestamp_from_days(*d).is_none() => "a date out of range",
                Some(_) => continue,
            };
            return Err(ExprError::UnsupportedValue {
                field: name.clone(),
                what,
            });
        }
        Ok(())
    }
}

/// Binds the referenced fields of one row, on lookup, borrowing its strings.
struct RowVars<'r> {
    names: &'r [String],
    indices: &'r [usize],
    row: &'r [Value],
}

static NULL: CelNull = CelNull;

impl VariableResolver for RowVars<'_> {
    fn resolve<'b>(&'b self, variable: &str) -> Option<CowVal<'b, 'b>> {
        let pos = self.names.iter().position(|n| n == variable)?;
        let value = self.row.get(*self.indices.get(pos)?)?;
        Some(match value {
            Value::Null => CowVal::Borrowed(&NULL),
            Value::Bool(b) => CowVal::owned(CelBool::from(*b)),
            Value::Int(i) => CowVal::owned(CelInt::from(*i)),
            Value::Float(f) => CowVal::owned(CelDouble::from(*f)),
            Value::Str(s) => CowVal::owned(CelString::from(s.as_str())),
            Value::Timestamp(t) => CowVal::owned(CelTimestamp::from(timestamp_from_micros(*t)?)),
            Value::Date(d) => CowVal::owned(CelTimestamp::from(timestamp_from_days(*d)?)),
            // Rejected by `check_row` before evaluation.
            Value::Nested => return None,
        })
    }
}

type CelDateTime = chrono::DateTime<chrono::FixedOffset>;

fn timestamp_from_micros(micros: i64) -> Option<CelDateTime> {
    chrono::DateTime::from_timestamp_micros(micros).map(|t| t.fixed_offset())
}

fn timestamp_from_days(days: i32) -> Option<CelDateTime> {
    chrono::DateTime::from_timestamp(i64::from(days).checked_mul(86_400)?, 0)
        .map(|t| t.fixed_offset())
}

/// The CEL type name of a value, for messages.
fn type_name(v: &dyn Val) -> String {
    v.get_type().name().to_owned()
}

/// The kind of a CEL value carried by an error, never the value.
fn value_kind(v: &cel::Value) -> String {
    v.type_of().to_string()
}

/// A message for an evaluation error that keeps the operation and the types involved
/// but none of the values: [`ExecutionError`]'s own messages may quote them.
fn sanitize(e: ExecutionError) -> ExprError {
    use ExecutionError as E;
    let msg = match &e {
        E::InvalidArgumentCount { expected, actual } => {
            format!("wrong number of arguments: expected {expected}, got {actual}")
        }
        E::UnsupportedTargetType { target } => {
            format!("unsupported argument of type {}", value_kind(target))
        }
        E::NotSupportedAsMethod { method, target } => format!(
            "method '{method}' is not supported on type {}",
            value_kind(target)
        ),
        E::UnsupportedKeyType(v) => format!("a {} cannot be a map key", value_kind(v)),
        E::UnexpectedType { got, want } => format!("unexpected type: got {got}, want {want}"),
        E::NoSuchKey(_) => "no such key".to_owned(),
        // Function name and argument types only.
        E::NoSuchOverload(overload) => overload.to_string(),
        // An identifier of the expression, not a value.
        E::UndeclaredReference(name) => format!("undeclared reference to '{name}'"),
        E::MissingArgumentOrTarget => "missing argument or target".to_owned(),
        E::ValuesNotComparable(a, b) => format!(
            "a {} cannot be compared to a {}",
            value_kind(a),
            value_kind(b)
        ),
        E::UnsupportedBinaryOperator(op, a, b) => format!(
            "operator '{op}' is not supported on {} and {}",
            value_kind(a),
            value_kind(b)
        ),
        E::UnsupportedIndex(index, target) => format!(
            "a {} cannot index a {}",
            value_kind(index),
            value_kind(target)
        ),
        // The function's own message may quote its arguments.
        E::FunctionError { function, .. } => format!("function '{function}' failed"),
        E::DivisionByZero(_) => "division by zero".to_owned(),
        E::RemainderByZero(_) => "modulus by zero".to_owned(),
        E::Overflow(op, _, _) => format!("integer overflow in '{op}'"),
        E::IndexOutOfBounds(_) => "index out of bounds".to_owned(),
        E::DuplicateKey(_) => "duplicate map key".to_owned(),
        _ => "internal error of the expression interpreter".to_owned(),
    };
    ExprError::Eval(msg)
}

/// Convert a CEL result to a field value of type `ty`.
fn to_field_value(v: &dyn Val, ty: FieldType) -> Result<Value, ExprError> {
    let convert_err = |reason: String| ExprError::Convert {
        target: ty,
        got: type_name(v),
        reason,
    };
    let value = if v.downcast_ref::<CelNull>().is_some() {
        return Ok(Value::Null);
    } else if let Some(b) = v.downcast_ref::<CelBool>() {
        Value::Bool(*b.inner())
    } else if let Some(i) = v.downcast_ref::<CelInt>() {
        Value::Int(*i.inner())
    } else if let Some(u) = v.downcast_ref::<CelUInt>() {
        match i64::try_from(*u.inner()) {
            Ok(i) => Value::Int(i),
            Err(_) if ty == FieldType::Float => Value::Float(*u.inner() as f64),
            Err(_) => return Err(convert_err("integer out of the 64-bit signed range".into())),
        }
    } else if let Some(d) = v.downcast_ref::<CelDouble>() {
        Value::Float(*d.inner())
    } else if let Some(s) = v.downcast_ref::<CelString>() {
        Value::Str(s.inner().to_owned())
    } else if let Some(t) = v.downcast_ref::<CelTimestamp>() {
        let utc = t.inner().with_timezone(&chrono::Utc);
        match ty {
            FieldType::Date => {
                return Ok(Value::Date(freshet_core::value::days_from_date(
                    utc.date_naive(),
                )));
            }
            FieldType::String => return Ok(Value::Str(utc.to_rfc3339())),
            _ => Value::Timestamp(utc.timestamp_micros()),
        }
    } else {
        return Err(convert_err("unsupported result type".into()));
    };
    ty.coerce(value).map_err(|e| convert_err(e.0))
}

/// What is known about an expression's numeric type before it runs.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Numeric {
    Int,
    Double,
    Unknown,
}

/// Collects the referenced fields, finds unknown identifiers and promotes the `int`
/// side of mixed `int`/`double` arithmetic.
struct Analyzer<'a> {
    schema: &'a Schema,
    env: &'a Env,
    /// Variables bound by the enclosing macros (comprehensions).
    bound: Vec<String>,
    fields: Vec<String>,
    unknown: Option<String>,
}

impl Analyzer<'_> {
    fn visit(&mut self, e: &mut IdedExpr) -> Numeric {
        match &mut e.expr {
            Ast::Unspecified => Numeric::Unknown,
            Ast::Literal(LiteralValue::Int(_)) => Numeric::Int,
            Ast::Literal(LiteralValue::Double(_)) => Numeric::Double,
            Ast::Literal(_) => Numeric::Unknown,
            Ast::Ident(name) => self.ident(name),
            Ast::Select(select) => {
                self.visit(&mut select.operand);
                Numeric::Unknown
            }
            Ast::List(list) => {
                for element in &mut list.elements {
                    self.visit(element);
                }
                Numeric::Unknown
            }
            Ast::Map(map) => {
                for entry in &mut map.entries {
                    self.entry(&mut entry.expr);
                }
                Numeric::Unknown
            }
            Ast::Struct(s) => {
                for entry in &mut s.entries {
                    self.entry(&mut entry.expr);
                }
                Numeric::Unknown
            }
            Ast::Comprehension(c) => {
                self.visit(&mut c.iter_range);
                self.visit(&mut c.accu_init);
                let depth = self.bound.len();
                self.bound.push(c.iter_var.clone());
                if let Some(v) = &c.iter_var2 {
                    self.bound.push(v.clone());
                }
                self.bound.push(c.accu_var.clone());
                self.visit(&mut c.loop_cond);
                self.visit(&mut c.loop_step);
                self.visit(&mut c.result);
                self.bound.truncate(depth);
                Numeric::Unknown
            }
            Ast::Call(call) => self.call(call),
        }
    }

    fn entry(&mut self, entry: &mut EntryExpr) {
        match entry {
            EntryExpr::StructField(field) => {
                self.visit(&mut field.value);
            }
            EntryExpr::MapEntry(entry) => {
                self.visit(&mut entry.key);
                self.visit(&mut entry.value);
            }
        }
    }

    fn ident(&mut self, name: &str) -> Numeric {
        let absolute = name.starts_with('.');
        let bare = name.trim_start_matches('.');
        if !absolute && self.bound.iter().any(|b| b == bare) {
            return Numeric::Unknown;
        }
        if let Some(field) = self.schema.field(bare) {
            if !self.fields.iter().any(|f| f == bare) {
                self.fields.push(bare.to_owned());
            }
            return match field.ty {
                FieldType::Int => Numeric::Int,
                FieldType::Float => Numeric::Double,
                _ => Numeric::Unknown,
            };
        }
        // `@`-names are the interpreter's own (macro accumulators); type names such as
        // `int` or `string` are values too (`type(x) == int`).
        if !bare.starts_with('@') && self.env.types().find_type(bare).is_none() {
            self.unknown.get_or_insert_with(|| bare.to_owned());
        }
        Numeric::Unknown
    }

    fn call(&mut self, call: &mut CallExpr) -> Numeric {
        if let Some(target) = &mut call.target {
            let namespace = match &target.expr {
                Ast::Ident(ns) => FUNCTION_NAMESPACES.contains(&ns.as_str()),
                _ => false,
            };
            if !namespace {
                self.visit(target);
            }
            for arg in &mut call.args {
                self.visit(arg);
            }
            return Numeric::Unknown;
        }
        let kinds: Vec<Numeric> = call.args.iter_mut().map(|a| self.visit(a)).collect();
        match (call.func_name.as_str(), kinds.as_slice()) {
            (
                operators::ADD | operators::SUBSTRACT | operators::MULTIPLY | operators::DIVIDE,
                &[l, r],
            ) => match (l, r) {
                (Numeric::Int, Numeric::Int) => Numeric::Int,
                (Numeric::Double, Numeric::Double) => Numeric::Double,
                (Numeric::Double, Numeric::Int) => {
                    promote(&mut call.args[1]);
                    Numeric::Double
                }
                (Numeric::Int, Numeric::Double) => {
                    promote(&mut call.args[0]);
                    Numeric::Double
                }
                _ => Numeric::Unknown,
            },
            (operators::MODULO, &[Numeric::Int, Numeric::Int]) => Numeric::Int,
            (operators::NEGATE, &[k]) => k,
            (operators::CONDITIONAL, &[_, a, b]) => match (a, b) {
                (x, y) if x == y => x,
                (Numeric::Double, Numeric::Int) => {
                    promote(&mut call.args[2]);
                    Numeric::Double
                }
                (Numeric::Int, Numeric::Double) => {
                    promote(&mut call.args[1]);
                    Numeric::Double
                }
                _ => Numeric::Unknown,
            },
            ("double", &[_]) => Numeric::Double,
            ("int", &[_]) => Numeric::Int,
            _ => Numeric::Unknown,
        }
    }
}

/// Make an `int` expression a `double`: a literal directly, anything else through
/// `double(...)`.
fn promote(e: &mut IdedExpr) {
    if let Ast::Literal(LiteralValue::Int(i)) = &e.expr {
        e.expr = Ast::Literal(LiteralValue::Double(CelDouble::from(*i.inner() as f64)));
        return;
    }
    let inner = std::mem::take(e);
    *e = IdedExpr {
        id: inner.id,
        expr: Ast::Call(CallExpr {
            func_name: "double".to_owned(),
            target: None,
            args: vec![inner],
        }),
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use freshet_core::schema::Field;

    fn schema() -> Schema {
        Schema::new(vec![
            Field::new("amount", FieldType::Float),
            Field::new("quantity", FieldType::Int),
            Field::new("merchant", FieldType::String),
            Field::new("card", FieldType::String),
            Field::new("approved", FieldType::Bool),
            Field::new("created_at", FieldType::Timestamp),
            Field::new("day", FieldType::Date),
            Field::new("unused", FieldType::String),
        ])
    }

    // 2026-11-21T10:00:00Z
    const TS: i64 = 1_795_255_200_000_000;

    fn row() -> Vec<Value> {
        vec![
            Value::Float(150.5),
            Value::Int(3),
            Value::Str("acme-store".into()),
            Value::Str("4111-1111-1111-1111".into()),
            Value::Bool(true),
            Value::Timestamp(TS),
            Value::Date(20_000),
            Value::Str("never bound".into()),
        ]
    }

    fn compile(src: &str) -> Expr {
        match Expr::compile(src, &schema()) {
            Ok(e) => e,
            Err(e) => panic!("`{src}` failed to compile: {e}"),
        }
    }

    fn check(src: &str) -> bool {
        compile(src).eval_bool(&row()).unwrap()
    }

    fn derive(src: &str, ty: FieldType) -> Value {
        match compile(src).eval_as(&row(), ty) {
            Ok(v) => v,
            Err(e) => panic!("`{src}` as {ty}: {e}"),
        }
    }

    #[test]
    fn filter_true_and_false() {
        assert!(check("amount > 100"));
        assert!(!check("amount > 200"));
        assert!(check("amount > 100.0 && quantity == 3"));
        assert!(check("quantity < 3.5"));
        assert!(!check("approved && quantity != 3"));
        assert!(check("merchant in ['acme-store', 'other']"));
        assert!(check("[1, 2, 3].exists(x, x == quantity)"));
        assert!(check("!(amount < 0) || card == ''"));
        assert!(check("type(amount) == double && type(quantity) == int"));
    }

    #[test]
    fn references_only_what_is_used() {
        let e = compile("amount > 1 && merchant.startsWith('a') && amount < 1000");
        assert_eq!(e.referenced_fields(), ["amount", "merchant"]);
        let e = compile("[1, 2].all(quantity, quantity > 0)");
        assert!(
            e.referenced_fields().is_empty(),
            "macro variables shadow fields"
        );
        // A row with only the referenced positions valid is enough.
        let e = compile("quantity > 1");
        assert!(e.eval_bool(&[Value::Nested, Value::Int(2)]).unwrap());
    }

    #[test]
    fn derive_each_field_type() {
        assert_eq!(derive("amount * 2", FieldType::Float), Value::Float(301.0));
        assert_eq!(derive("quantity * 2", FieldType::Int), Value::Int(6));
        assert_eq!(derive("quantity * 2", FieldType::Float), Value::Float(6.0));
        assert_eq!(derive("amount * 2", FieldType::Int), Value::Int(301));
        assert_eq!(
            derive("amount * quantity", FieldType::Float),
            Value::Float(451.5)
        );
        assert_eq!(
            derive("quantity + 0.5", FieldType::Float),
            Value::Float(3.5)
        );
        assert_eq!(
            derive("approved ? amount : 0", FieldType::Float),
            Value::Float(150.5)
        );
        assert_eq!(derive("quantity / 2", FieldType::Int), Value::Int(1));
        assert_eq!(
            derive("double(quantity) / 2", FieldType::Float),
            Value::Float(1.5)
        );
        assert!(
            compile("amount").eval_as(&row(), FieldType::Int).is_err(),
            "150.5 is no int"
        );
        assert_eq!(
            derive(
                "merchant.upperAscii() + '/' + string(quantity)",
                FieldType::String
            ),
            Value::Str("ACME-STORE/3".into())
        );
        assert_eq!(
            derive("quantity", FieldType::String),
            Value::Str("3".into())
        );
        assert_eq!(
            derive("amount >= 100.0", FieldType::Bool),
            Value::Bool(true)
        );
        assert_eq!(
            derive("created_at + duration('1h')", FieldType::Timestamp),
            Value::Timestamp(TS + 3_600_000_000)
        );
        assert_eq!(
            derive("'2026-11-21T10:00:00Z'", FieldType::Timestamp),
            Value::Timestamp(TS)
        );
        assert_eq!(derive("created_at", FieldType::Date), Value::Date(20_778));
        assert_eq!(derive("day", FieldType::Date), Value::Date(20_000));
        assert_eq!(
            derive("created_at", FieldType::String),
            Value::Str("2026-11-21T10:00:00+00:00".into())
        );
        assert_eq!(derive("null", FieldType::Int), Value::Null);
        assert_eq!(
            derive("math.round(amount)", FieldType::Int),
            Value::Int(151)
        );
    }

    #[test]
    fn unknown_identifier_fails_compile_naming_it() {
        let err = Expr::compile("amout > 100", &schema()).unwrap_err();
        assert!(matches!(&err, ExprError::UnknownField { name, .. } if name == "amout"));
        let msg = err.to_string();
        assert!(msg.contains("`amout`"), "{msg}");
        assert!(msg.contains("amount"), "lists the declared fields: {msg}");
        // Inside a macro, only the macro's own variable is allowed besides fields.
        let err = Expr::compile("[1].exists(x, y > x)", &schema()).unwrap_err();
        assert!(matches!(err, ExprError::UnknownField { name, .. } if name == "y"));
    }

    #[test]
    fn syntax_error_fails_compile_with_position() {
        let err = Expr::compile("amount > > 100", &schema()).unwrap_err();
        let ExprError::Syntax(msg) = &err else {
            panic!("expected a syntax error, got {err:?}");
        };
        assert!(msg.contains("line 1, column"), "{msg}");
        println!("syntax error: {err}");
        assert!(Expr::compile("merchant.startsWith('x'", &schema()).is_err());
        assert!(Expr::compile("", &schema()).is_err());
    }

    #[test]
    fn nulls() {
        let mut r = row();
        r[0] = Value::Null;
        r[2] = Value::Null;
        let e = compile("amount > 100");
        let err = e.eval_bool(&r).unwrap_err();
        assert!(matches!(err, ExprError::Eval(_)), "{err:?}");
        assert!(
            !compile("amount != null && amount > 100")
                .eval_bool(&r)
                .unwrap()
        );
        assert!(compile("amount == null").eval_bool(&r).unwrap());
        assert_eq!(
            compile("merchant == null ? 'unknown' : merchant")
                .eval_as(&r, FieldType::String)
                .unwrap(),
            Value::Str("unknown".into())
        );
        assert_eq!(
            compile("amount").eval_as(&r, FieldType::Float).unwrap(),
            Value::Null
        );
        assert_eq!(compile("amount").eval(&r).unwrap(), cel::Value::Null);
        let err = compile("amount").eval_bool(&r).unwrap_err();
        assert!(matches!(err, ExprError::NotBool { .. }), "{err:?}");
    }

    #[test]
    fn string_functions() {
        assert!(check("merchant.startsWith('acme')"));
        assert!(!check("merchant.startsWith('x')"));
        assert!(check(
            "merchant.endsWith('store') && merchant.contains('-')"
        ));
        assert!(check("merchant.matches('^a[a-z]+-')"));
        assert!(check("size(merchant) == 10"));
        assert!(check("merchant.lowerAscii().split('-')[0] == 'acme'"));
    }

    #[test]
    fn timestamps_and_dates() {
        assert!(check("created_at > timestamp('2026-01-01T00:00:00Z')"));
        assert!(!check("created_at > timestamp('2027-01-01T00:00:00Z')"));
        assert!(check(
            "created_at.getFullYear() == 2026 && created_at.getHours() == 10"
        ));
        assert!(check(
            "created_at - timestamp('2026-11-21T09:00:00Z') == duration('1h')"
        ));
        // 20000 days after the epoch is 2024-10-04, bound as midnight UTC.
        assert!(check("day == timestamp('2024-10-04T00:00:00Z')"));
        assert!(check("day < created_at"));
        assert_eq!(
            compile("created_at").eval(&row()).unwrap(),
            cel::Value::Timestamp(timestamp_from_micros(TS).unwrap())
        );
        let mut r = row();
        r[5] = Value::Timestamp(i64::MAX);
        let err = compile("created_at > created_at")
            .eval_bool(&r)
            .unwrap_err();
        assert!(matches!(err, ExprError::UnsupportedValue { .. }), "{err:?}");
    }

    #[test]
    fn evaluation_errors_are_errors() {
        let err = compile("quantity / 0 == 1").eval_bool(&row()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "expression evaluation failed: division by zero"
        );
        assert!(compile("quantity % 0 == 1").eval_bool(&row()).is_err());
        assert!(
            compile("quantity * 9223372036854775807 > 0")
                .eval_bool(&row())
                .is_err()
        );
        assert!(compile("nosuchfunction(quantity)").eval(&row()).is_err());
        assert!(compile("merchant > 3").eval(&row()).is_err());
        let err = compile("quantity + 1").eval_bool(&row()).unwrap_err();
        assert!(matches!(err, ExprError::NotBool { got } if got == "int"));
        let short = [Value::Float(1.0)];
        let err = compile("merchant == ''").eval_bool(&short).unwrap_err();
        assert!(matches!(err, ExprError::RowShape { .. }), "{err:?}");
        let mut r = row();
        r[2] = Value::Nested;
        assert!(compile("merchant == ''").eval_bool(&r).is_err());
    }

    #[test]
    fn errors_never_contain_field_values() {
        let secret = "4111-1111-1111-1111";
        let mut r = row();
        r[0] = Value::Float(987_654.321);
        for src in [
            "card > 3",
            "card + 1",
            "int(card) > 0",
            "timestamp(card) > created_at",
            "card.matches(card + '[')",
            "{'a': 1}[card] == 1",
            "card == 'x' || card - 1 == 0",
            "[card][5] == ''",
            "amount / 0.0 > card",
            "amount % 2 == 0",
            "card < amount",
        ] {
            let err = match compile(src).eval(&r) {
                Ok(v) => panic!("`{src}` should fail, gave a {:?}", v.type_of()),
                Err(e) => e,
            };
            let msg = err.to_string();
            assert!(!msg.contains(secret), "`{src}`: {msg}");
            assert!(!msg.contains("4111"), "`{src}`: {msg}");
            assert!(!msg.contains("987"), "`{src}`: {msg}");
            let debug = format!("{err:?}");
            assert!(!debug.contains("4111"), "`{src}`: {debug}");
        }
        let err = compile("card").eval_as(&r, FieldType::Int).unwrap_err();
        assert!(!err.to_string().contains("4111"), "{err}");
    }

    #[test]
    fn expr_is_send_sync_and_shareable() {
        fn assert_send_sync<T: Send + Sync + fmt::Debug>() {}
        assert_send_sync::<Expr>();
        let e = Arc::new(compile("amount > 100 && merchant.startsWith('acme')"));
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let e = Arc::clone(&e);
                std::thread::spawn(move || (0..1000).all(|_| e.eval_bool(&row()).unwrap()))
            })
            .collect();
        for h in handles {
            assert!(h.join().unwrap());
        }
        assert!(format!("{e:?}").contains("amount > 100"));
    }

    /// Rough per-record cost, printed, not asserted (`--nocapture` to see it). The
    /// interpreter is optimised even in test builds (`profile.dev.package."*"`); this
    /// module is not, and other tests may share the CPU.
    #[test]
    fn eval_cost() {
        let r = row();
        let time = |label: &str, n: u32, mut f: Box<dyn FnMut() -> bool + '_>| {
            let t = std::time::Instant::now();
            let ok = (0..n).filter(|_| f()).count();
            let ns = t.elapsed().as_nanos() as f64 / f64::from(n);
            assert_eq!(ok, n as usize, "{label}");
            println!("eval cost: {ns:.0} ns/eval for {label}");
        };
        for src in [
            "amount > 100",
            "amount > 100 && merchant.startsWith('acme')",
            "created_at > timestamp('2026-01-01T00:00:00Z')",
        ] {
            let e = compile(src);
            time(
                &format!("filter `{src}`"),
                200_000,
                Box::new(|| e.eval_bool(std::hint::black_box(&r)).is_ok()),
            );
        }
        for (src, ty) in [
            ("amount * 1.2 + quantity", FieldType::Float),
            ("merchant.upperAscii()", FieldType::String),
        ] {
            let e = compile(src);
            time(
                &format!("derive `{src}` as {ty}"),
                200_000,
                Box::new(|| e.eval_as(std::hint::black_box(&r), ty).is_ok()),
            );
        }
    }
}
