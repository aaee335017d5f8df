//! Turning tables that name their own columns (a `dataframe_split`, a CSV header,
//! columnar `inputs`, OIP tensors) into rows in the model's column order.

use super::FormatError;
use super::error::echo_name;
use super::json::Ctx;
use freshet_core::Value;

/// The model slot of each request column, in request order.
///
/// # Errors
/// The first request column the model does not read ([`FormatError::ExtraColumn`]) or
/// that appears twice ([`FormatError::DuplicateColumn`]), then the first model column
/// the request lacks ([`FormatError::MissingColumn`]).
pub(crate) fn header_slots<S: AsRef<str>>(
    ctx: &Ctx<'_>,
    names: &[S],
) -> Result<Vec<usize>, FormatError> {
    let mut present = vec![false; ctx.columns.len()];
    let mut slots = Vec::with_capacity(names.len());
    for (i, name) in names.iter().enumerate() {
        let name = name.as_ref();
        let slot = ctx.slot(name, i).ok_or_else(|| FormatError::ExtraColumn {
            column: echo_name(name),
        })?;
        if std::mem::replace(&mut present[slot], true) {
            return Err(FormatError::DuplicateColumn {
                column: echo_name(name),
            });
        }
        slots.push(slot);
    }
    ctx.first_missing(&present)?;
    Ok(slots)
}

/// Rows given in request column order (`slots` from [`header_slots`]), reordered to the
/// model's order and coerced.
///
/// # Errors
/// [`FormatError::Empty`], [`FormatError::TooManyRows`], a row of the wrong length
/// ([`FormatError::RowArity`]) or a cell of the wrong type ([`FormatError::WrongType`]).
pub(crate) fn reorder_rows(
    ctx: &Ctx<'_>,
    slots: &[usize],
    raw: Vec<Vec<Value>>,
) -> Result<Vec<Vec<Value>>, FormatError> {
    check_count(ctx, raw.len())?;
    let in_order = slots.iter().enumerate().all(|(i, s)| i == *s);
    let mut rows = Vec::with_capacity(raw.len());
    for (r, row) in raw.into_iter().enumerate() {
        if row.len() != slots.len() {
            return Err(FormatError::RowArity {
                row: r,
                expected: slots.len(),
                found: row.len(),
            });
        }
        let out = if in_order {
            let mut row = row;
            for (c, v) in row.iter_mut().enumerate() {
                *v = ctx.coerce(c, r, std::mem::replace(v, Value::Null))?;
            }
            row
        } else {
            let mut out = vec![Value::Null; slots.len()];
            for (v, &slot) in row.into_iter().zip(slots) {
                out[slot] = ctx.coerce(slot, r, v)?;
            }
            out
        };
        rows.push(out);
    }
    Ok(rows)
}

/// Columns (already coerced, in model order) turned into rows.
///
/// # Errors
/// [`FormatError::RowCountMismatch`] naming the first column whose length differs
/// from the first column's; [`FormatError::Empty`]; [`FormatError::TooManyRows`].
pub(crate) fn transpose(
    ctx: &Ctx<'_>,
    columns: Vec<Vec<Value>>,
) -> Result<Vec<Vec<Value>>, FormatError> {
    let n = columns.first().map_or(0, Vec::len);
    for (c, col) in columns.iter().enumerate() {
        if col.len() != n {
            return Err(FormatError::RowCountMismatch {
                column: ctx.column_name(c),
                expected: n,
                found: col.len(),
            });
        }
    }
    check_count(ctx, n)?;
    let mut iters: Vec<_> = columns.into_iter().map(Vec::into_iter).collect();
    Ok((0..n)
        .map(|_| {
            iters
                .iter_mut()
                .map(|it| it.next().unwrap_or(Value::Null))
                .collect()
        })
        .collect())
}

/// A request must hold at least one row and at most the limit.
pub(crate) fn check_count(ctx: &Ctx<'_>, n: usize) -> Result<(), FormatError> {
    if n == 0 {
        Err(FormatError::Empty)
    } else if n > ctx.limits.max_rows {
        Err(ctx.too_many_rows())
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::formats::testutil::{columns, row0, row1};
    use crate::formats::{InputColumn, Limits};
    use freshet_core::FieldType;

    fn with_ctx<T>(f: impl FnOnce(&Ctx<'_>) -> T) -> T {
        let cols = columns();
        let limits = Limits { max_rows: 3 };
        f(&Ctx::new(&cols, &limits))
    }

    #[test]
    fn header_order_is_mapped_to_model_order() {
        with_ctx(|ctx| {
            let names = ["name", "amount", "count", "ts", "flag"];
            assert_eq!(header_slots(ctx, &names), Ok(vec![3, 0, 1, 4, 2]));
        });
    }

    #[test]
    fn header_problems_name_the_column() {
        with_ctx(|ctx| {
            let err = header_slots(ctx, &["amount", "count", "flag", "name"]).unwrap_err();
            assert_eq!(
                err,
                FormatError::MissingColumn {
                    column: "ts".into()
                }
            );
            let err =
                header_slots(ctx, &["amount", "count", "flag", "name", "ts", "zip"]).unwrap_err();
            assert_eq!(
                err,
                FormatError::ExtraColumn {
                    column: "zip".into()
                }
            );
            let err = header_slots(ctx, &["amount", "amount"]).unwrap_err();
            assert_eq!(
                err,
                FormatError::DuplicateColumn {
                    column: "amount".into()
                }
            );
        });
    }

    #[test]
    fn rows_are_reordered_and_coerced() {
        with_ctx(|ctx| {
            let raw = vec![
                vec![
                    Value::Str("ann".into()),
                    Value::Int(12),
                    Value::Int(3),
                    Value::Str("2026-11-21T10:00:00Z".into()),
                    Value::Bool(true),
                ],
                vec![
                    Value::Str("bob".into()),
                    Value::Float(-0.5),
                    Value::Int(-7),
                    Value::Int(1_700_000_000_000),
                    Value::Str("false".into()),
                ],
            ];
            let rows = reorder_rows(ctx, &[3, 0, 1, 4, 2], raw).unwrap();
            assert_eq!(rows, vec![row0(), row1()]);
        });
    }

    #[test]
    fn arity_and_count_are_checked() {
        with_ctx(|ctx| {
            let err = reorder_rows(ctx, &[0, 1], vec![vec![Value::Null; 2], vec![Value::Null]])
                .unwrap_err();
            assert_eq!(
                err,
                FormatError::RowArity {
                    row: 1,
                    expected: 2,
                    found: 1
                }
            );
            assert_eq!(reorder_rows(ctx, &[0], vec![]), Err(FormatError::Empty));
            assert_eq!(
                reorder_rows(ctx, &[0], vec![vec![Value::Null]; 4]),
                Err(FormatError::TooManyRows { max: 3 })
            );
        });
    }

    #[test]
    fn columns_are_transposed() {
        let cols = vec![
            InputColumn::new("a", FieldType::Int),
            InputColumn::new("b", FieldType::Int),
        ];
        let limits = Limits::default();
        let ctx = Ctx::new(&cols, &limits);
        let rows = transpose(
            &ctx,
            vec![
                vec![Value::Int(1), Value::Int(2)],
                vec![Value::Int(3), Value::Int(4)],
            ],
        )
        .unwrap();
        assert_eq!(
            rows,
            vec![
                vec![Value::Int(1), Value::Int(3)],
                vec![Value::Int(2), Value::Int(4)]
            ]
        );
        let err = transpose(&ctx, vec![vec![Value::Int(1)], vec![]]).unwrap_err();
        assert_eq!(
            err,
            FormatError::RowCountMismatch {
                column: "b".into(),
                expected: 1,
                found: 0
            }
        );
    }
}
