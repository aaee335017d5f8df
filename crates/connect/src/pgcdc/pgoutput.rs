//! The pgoutput logical replication protocol (version 1), as returned one message per
//! row by `pg_logical_slot_peek_binary_changes`: begin, relation, insert, update,
//! delete, truncate and commit. Column values are in Postgres's text output form.

use std::collections::HashMap;

/// A message that could not be read; the slot's data is not what pgoutput v1 writes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("pgoutput: {0}")]
pub struct ProtocolError(pub String);

/// A column of a relation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    pub name: String,
    pub type_oid: u32,
}

/// A table as the stream describes it (sent before its first change in a session, and
/// again when its definition changes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Relation {
    pub id: u32,
    pub schema: String,
    pub name: String,
    pub columns: Vec<Column>,
}

/// One column value of a tuple.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Datum {
    Null,
    /// A TOASTed value the change did not touch; pgoutput does not repeat it.
    Unchanged,
    Text(String),
}

/// A message of the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    Begin {
        /// LSN of the transaction's commit record.
        final_lsn: u64,
        /// Microseconds since 2000-01-01 (the Postgres epoch).
        commit_time: i64,
        xid: u32,
    },
    Commit {
        commit_lsn: u64,
        /// End of the commit record: the slot's position once this transaction is done.
        end_lsn: u64,
        commit_time: i64,
    },
    Relation(Relation),
    Insert {
        relation: u32,
        new: Vec<Datum>,
    },
    Update {
        relation: u32,
        new: Vec<Datum>,
    },
    Delete {
        relation: u32,
        /// The replica identity's columns (the key, or the whole row under
        /// `REPLICA IDENTITY FULL`); other columns are null.
        old: Vec<Datum>,
    },
    Truncate {
        relations: Vec<u32>,
    },
    /// Origin, type and logical messages: nothing a change event needs.
    Other,
}

struct Reader<'a> {
    buf: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], ProtocolError> {
        let end = self.at.checked_add(n).filter(|e| *e <= self.buf.len());
        let Some(end) = end else {
            return Err(ProtocolError(format!(
                "message ends after {} bytes, {} more expected",
                self.buf.len(),
                n
            )));
        };
        let out = &self.buf[self.at..end];
        self.at = end;
        Ok(out)
    }

    fn u8(&mut self) -> Result<u8, ProtocolError> {
        Ok(self.take(1)?[0])
    }

    fn i16(&mut self) -> Result<i16, ProtocolError> {
        let b = self.take(2)?;
        Ok(i16::from_be_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Result<u32, ProtocolError> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn u64(&mut self) -> Result<u64, ProtocolError> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_be_bytes(a))
    }

    fn cstr(&mut self) -> Result<String, ProtocolError> {
        let rest = &self.buf[self.at..];
        let Some(n) = rest.iter().position(|b| *b == 0) else {
            return Err(ProtocolError("unterminated string".into()));
        };
        let s = String::from_utf8_lossy(&rest[..n]).into_owned();
        self.at += n + 1;
        Ok(s)
    }

    fn tuple(&mut self) -> Result<Vec<Datum>, ProtocolError> {
        let n = self.i16()?;
        let n = usize::try_from(n).map_err(|_| ProtocolError("negative column count".into()))?;
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            out.push(match self.u8()? {
                b'n' => Datum::Null,
                b'u' => Datum::Unchanged,
                b't' => {
                    let len = usize::try_from(self.u32()?)
                        .map_err(|_| ProtocolError("value too long".into()))?;
                    let bytes = self.take(len)?;
                    Datum::Text(String::from_utf8_lossy(bytes).into_owned())
                }
                b'b' => {
                    return Err(ProtocolError(
                        "binary column values are not asked for".into(),
                    ));
                }
                k => return Err(ProtocolError(format!("unknown column kind {k:#04x}"))),
            });
        }
        Ok(out)
    }
}

/// Read one message.
pub fn parse(buf: &[u8]) -> Result<Message, ProtocolError> {
    let mut r = Reader { buf, at: 0 };
    Ok(match r.u8()? {
        b'B' => Message::Begin {
            final_lsn: r.u64()?,
            commit_time: r.u64()? as i64,
            xid: r.u32()?,
        },
        b'C' => {
            let _flags = r.u8()?;
            Message::Commit {
                commit_lsn: r.u64()?,
                end_lsn: r.u64()?,
                commit_time: r.u64()? as i64,
            }
        }
        b'R' => {
            let id = r.u32()?;
            let schema = r.cstr()?;
            let name = r.cstr()?;
            let _replica_identity = r.u8()?;
            let n = usize::try_from(r.i16()?)
                .map_err(|_| ProtocolError("negative column count".into()))?;
            let mut columns = Vec::with_capacity(n);
            for _ in 0..n {
                let _flags = r.u8()?;
                let name = r.cstr()?;
                let type_oid = r.u32()?;
                let _typmod = r.u32()?;
                columns.push(Column { name, type_oid });
            }
            Message::Relation(Relation {
                id,
                schema,
                name,
                columns,
            })
        }
        b'I' => {
            let relation = r.u32()?;
            match r.u8()? {
                b'N' => Message::Insert {
                    relation,
                    new: r.tuple()?,
                },
                k => return Err(ProtocolError(format!("insert: unexpected part {k:#04x}"))),
            }
        }
        b'U' => {
            let relation = r.u32()?;
            let mut part = r.u8()?;
            if part == b'K' || part == b'O' {
                r.tuple()?;
                part = r.u8()?;
            }
            if part != b'N' {
                return Err(ProtocolError(format!(
                    "update: unexpected part {part:#04x}"
                )));
            }
            Message::Update {
                relation,
                new: r.tuple()?,
            }
        }
        b'D' => {
            let relation = r.u32()?;
            match r.u8()? {
                b'K' | b'O' => Message::Delete {
                    relation,
                    old: r.tuple()?,
                },
                k => return Err(ProtocolError(format!("delete: unexpected part {k:#04x}"))),
            }
        }
        b'T' => {
            let n = r.u32()?;
            let _options = r.u8()?;
            let relations = (0..n).map(|_| r.u32()).collect::<Result<_, _>>()?;
            Message::Truncate { relations }
        }
        b'O' | b'Y' | b'M' => Message::Other,
        k => return Err(ProtocolError(format!("unknown message type {k:#04x}"))),
    })
}

/// A row change, with its relation resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub op: Op,
    pub relation: u32,
    pub values: Vec<Datum>,
    /// WAL position of the change (rows of one multi-insert share it).
    pub lsn: u64,
}

/// What happened to a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Snapshot,
    Insert,
    Update,
    Delete,
}

impl Op {
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Snapshot => "snapshot",
            Op::Insert => "insert",
            Op::Update => "update",
            Op::Delete => "delete",
        }
    }
}

/// A committed transaction and its changes to the published tables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transaction {
    pub xid: u32,
    pub commit_lsn: u64,
    pub end_lsn: u64,
    pub commit_time: i64,
    pub changes: Vec<Change>,
    /// Tables truncated by the transaction (not captured as events).
    pub truncated: usize,
}

/// Assembles transactions from messages, keeping the relations they refer to.
#[derive(Debug, Default)]
pub struct Assembler {
    pub relations: HashMap<u32, Relation>,
    open: Option<Transaction>,
}

impl Assembler {
    /// Feed one message read at `lsn`; returns a transaction when its commit arrives.
    pub fn push(&mut self, lsn: u64, msg: Message) -> Result<Option<Transaction>, ProtocolError> {
        fn open(s: &mut Assembler) -> Result<&mut Transaction, ProtocolError> {
            s.open
                .as_mut()
                .ok_or_else(|| ProtocolError("a change outside a transaction".into()))
        }
        match msg {
            Message::Begin {
                final_lsn,
                commit_time,
                xid,
            } => {
                self.open = Some(Transaction {
                    xid,
                    commit_lsn: final_lsn,
                    end_lsn: 0,
                    commit_time,
                    changes: Vec::new(),
                    truncated: 0,
                });
            }
            Message::Relation(r) => {
                self.relations.insert(r.id, r);
            }
            Message::Insert { relation, new } => open(self)?.changes.push(Change {
                op: Op::Insert,
                relation,
                values: new,
                lsn,
            }),
            Message::Update { relation, new } => open(self)?.changes.push(Change {
                op: Op::Update,
                relation,
                values: new,
                lsn,
            }),
            Message::Delete { relation, old } => open(self)?.changes.push(Change {
                op: Op::Delete,
                relation,
                values: old,
                lsn,
            }),
            Message::Truncate { relations } => open(self)?.truncated += relations.len(),
            Message::Commit {
                commit_lsn,
                end_lsn,
                commit_time,
            } => {
                let mut t = self
                    .open
                    .take()
                    .ok_or_else(|| ProtocolError("a commit without a begin".into()))?;
                t.commit_lsn = commit_lsn;
                t.end_lsn = end_lsn;
                t.commit_time = commit_time;
                return Ok(Some(t));
            }
            Message::Other => {}
        }
        Ok(None)
    }
}

/// `X/Y`, as Postgres writes an LSN.
pub fn format_lsn(lsn: u64) -> String {
    format!("{:X}/{:X}", lsn >> 32, lsn & 0xFFFF_FFFF)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tuple(values: &[Option<&str>]) -> Vec<u8> {
        let mut b = (values.len() as i16).to_be_bytes().to_vec();
        for v in values {
            match v {
                None => b.push(b'n'),
                Some(s) => {
                    b.push(b't');
                    b.extend((s.len() as u32).to_be_bytes());
                    b.extend(s.as_bytes());
                }
            }
        }
        b
    }

    #[test]
    fn a_transaction_is_assembled_from_its_messages() {
        let mut a = Assembler::default();
        let mut begin = vec![b'B'];
        begin.extend(100u64.to_be_bytes());
        begin.extend(7u64.to_be_bytes());
        begin.extend(726u32.to_be_bytes());
        assert_eq!(a.push(90, parse(&begin).unwrap()).unwrap(), None);

        let mut rel = vec![b'R'];
        rel.extend(16384u32.to_be_bytes());
        rel.extend(b"public\0orders\0d");
        rel.extend(2i16.to_be_bytes());
        for (name, oid) in [("id", 23u32), ("note", 25)] {
            rel.push(1);
            rel.extend(name.as_bytes());
            rel.push(0);
            rel.extend(oid.to_be_bytes());
            rel.extend((-1i32).to_be_bytes());
        }
        a.push(90, parse(&rel).unwrap()).unwrap();
        assert_eq!(a.relations[&16384].columns[1].name, "note");

        let mut ins = vec![b'I'];
        ins.extend(16384u32.to_be_bytes());
        ins.push(b'N');
        ins.extend(tuple(&[Some("1"), Some("héllo")]));
        a.push(91, parse(&ins).unwrap()).unwrap();

        let mut upd = vec![b'U'];
        upd.extend(16384u32.to_be_bytes());
        upd.push(b'K');
        upd.extend(tuple(&[Some("1"), None]));
        upd.push(b'N');
        upd.extend(tuple(&[Some("2"), None]));
        a.push(92, parse(&upd).unwrap()).unwrap();

        let mut del = vec![b'D'];
        del.extend(16384u32.to_be_bytes());
        del.push(b'K');
        del.extend(tuple(&[Some("2"), None]));
        a.push(93, parse(&del).unwrap()).unwrap();

        let mut commit = vec![b'C', 0];
        commit.extend(100u64.to_be_bytes());
        commit.extend(130u64.to_be_bytes());
        commit.extend(7u64.to_be_bytes());
        let t = a.push(130, parse(&commit).unwrap()).unwrap().unwrap();
        assert_eq!((t.xid, t.commit_lsn, t.end_lsn), (726, 100, 130));
        let ops: Vec<_> = t.changes.iter().map(|c| (c.op, c.lsn)).collect();
        assert_eq!(ops, [(Op::Insert, 91), (Op::Update, 92), (Op::Delete, 93)]);
        assert_eq!(t.changes[0].values[1], Datum::Text("héllo".into()));
        assert_eq!(t.changes[1].values[0], Datum::Text("2".into()));
        assert_eq!(t.changes[2].values[1], Datum::Null);
    }

    #[test]
    fn truncated_and_unknown_messages_are_errors_not_panics() {
        assert!(parse(b"").is_err());
        assert!(parse(b"B\0\0").is_err());
        assert!(parse(b"Z").is_err());
        let mut ins = vec![b'I'];
        ins.extend(1u32.to_be_bytes());
        ins.push(b'N');
        ins.extend(1i16.to_be_bytes());
        ins.push(b't');
        ins.extend(100u32.to_be_bytes());
        ins.extend(b"short");
        assert!(parse(&ins).is_err());
        let mut a = Assembler::default();
        assert!(
            a.push(
                1,
                Message::Insert {
                    relation: 1,
                    new: vec![]
                }
            )
            .is_err()
        );
    }

    #[test]
    fn lsns_are_written_as_postgres_does() {
        assert_eq!(format_lsn(0x0152_9620), "0/1529620");
        assert_eq!(format_lsn((3 << 32) | 0xAB), "3/AB");
    }
}
