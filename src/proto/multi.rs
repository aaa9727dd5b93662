//! The body of `multi` and `multiRead` replies: a [`MultiHeader`] before each result, and a
//! terminating header with `done` set.

use bytes::{Bytes, BytesMut};

use super::data::Stat;
use super::error_code::ErrorCode;
use super::jute::{DecodeError, Jute, Reader};
use super::opcode::OpCode;
use super::records::{
    CheckVersionRequest, Create2Response, CreateRequest, CreateResponse, CreateTtlRequest,
    DeleteRequest, ErrorResponse, GetChildrenResponse, GetDataResponse, MultiHeader,
    PathWatchRequest, SetDataRequest, StatResponse,
};

/// The result of one op inside a `multi` or `multiRead` reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpResult {
    /// A create succeeded; `stat` is present when the server sent one (create2 and friends).
    Create {
        /// The created path, as the server knows it (with any chroot).
        path: String,
        /// The new node's stat.
        stat: Option<Stat>,
    },
    /// A delete succeeded.
    Delete,
    /// A set_data succeeded.
    SetData {
        /// The node's new stat.
        stat: Stat,
    },
    /// A version check passed.
    Check,
    /// A get_data inside multi_read succeeded.
    GetData {
        /// The data.
        data: Bytes,
        /// The stat.
        stat: Stat,
    },
    /// A get_children inside multi_read succeeded.
    GetChildren {
        /// Child names.
        children: Vec<String>,
    },
    /// The op failed, or (code [`ErrorCode::Ok`] / [`ErrorCode::RuntimeInconsistency`]) was
    /// rolled back or never attempted because another op of the transaction failed.
    Error(ErrorCode),
}

impl OpResult {
    /// The error code of an error result.
    pub fn error(&self) -> Option<ErrorCode> {
        match self {
            OpResult::Error(code) => Some(*code),
            _ => None,
        }
    }
}

/// Marks the end of a multi request or reply.
pub const MULTI_TERMINATOR: MultiHeader = MultiHeader {
    op: -1,
    done: true,
    err: -1,
};

/// Decodes the results of a `multi` or `multiRead` reply body.
pub fn decode_multi_results(frame: &Bytes) -> Result<Vec<OpResult>, DecodeError> {
    let mut r = Reader::new(frame);
    let mut results = Vec::new();
    loop {
        let header = MultiHeader::read(&mut r)?;
        if header.done {
            break;
        }
        results.push(decode_one(&mut r, header)?);
    }
    r.finish()?;
    Ok(results)
}

fn decode_one(r: &mut Reader<'_>, header: MultiHeader) -> Result<OpResult, DecodeError> {
    let op = OpCode::from_code(header.op).ok_or(DecodeError::UnknownValue {
        what: "multi result op",
        value: header.op.into(),
    })?;
    Ok(match op {
        OpCode::Create => OpResult::Create {
            path: CreateResponse::read(r)?.path,
            stat: None,
        },
        OpCode::Create2 | OpCode::CreateContainer | OpCode::CreateTtl => {
            let reply = Create2Response::read(r)?;
            OpResult::Create {
                path: reply.path,
                stat: Some(reply.stat),
            }
        }
        OpCode::Delete | OpCode::DeleteContainer => OpResult::Delete,
        OpCode::SetData => OpResult::SetData {
            stat: StatResponse::read(r)?.stat,
        },
        OpCode::Check => OpResult::Check,
        OpCode::GetData => {
            let reply = GetDataResponse::read(r)?;
            OpResult::GetData {
                data: reply.data,
                stat: reply.stat,
            }
        }
        OpCode::GetChildren => OpResult::GetChildren {
            children: GetChildrenResponse::read(r)?.children,
        },
        OpCode::Error => OpResult::Error(ErrorCode::from_code(ErrorResponse::read(r)?.err)),
        other => {
            return Err(DecodeError::UnknownValue {
                what: "multi result op",
                value: other.code().into(),
            });
        }
    })
}

/// One op of a `multi` or `multiRead` request, with the record the server expects for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MultiOpRecord<'a> {
    /// A create, sent with the given op code (create, create2 or createContainer).
    Create(OpCode, CreateRequest<'a>),
    /// A create with a TTL.
    CreateTtl(CreateTtlRequest<'a>),
    /// A delete.
    Delete(DeleteRequest<'a>),
    /// A data write.
    SetData(SetDataRequest<'a>),
    /// A version check.
    Check(CheckVersionRequest<'a>),
    /// A data read (multiRead only).
    GetData(PathWatchRequest<'a>),
    /// A child listing (multiRead only).
    GetChildren(PathWatchRequest<'a>),
}

impl MultiOpRecord<'_> {
    /// The op code written in this op's header.
    pub fn op_code(&self) -> OpCode {
        match self {
            MultiOpRecord::Create(op, _) => *op,
            MultiOpRecord::CreateTtl(_) => OpCode::CreateTtl,
            MultiOpRecord::Delete(_) => OpCode::Delete,
            MultiOpRecord::SetData(_) => OpCode::SetData,
            MultiOpRecord::Check(_) => OpCode::Check,
            MultiOpRecord::GetData(_) => OpCode::GetData,
            MultiOpRecord::GetChildren(_) => OpCode::GetChildren,
        }
    }
}

/// The body of a `multi` or `multiRead` request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MultiRequest<'a> {
    /// The ops, in order.
    pub ops: Vec<MultiOpRecord<'a>>,
}

impl<'a> Jute<'a> for MultiRequest<'a> {
    fn write(&self, buf: &mut BytesMut) {
        for op in &self.ops {
            MultiHeader {
                op: op.op_code().code(),
                done: false,
                err: -1,
            }
            .write(buf);
            match op {
                MultiOpRecord::Create(_, r) => r.write(buf),
                MultiOpRecord::CreateTtl(r) => r.write(buf),
                MultiOpRecord::Delete(r) => r.write(buf),
                MultiOpRecord::SetData(r) => r.write(buf),
                MultiOpRecord::Check(r) => r.write(buf),
                MultiOpRecord::GetData(r) | MultiOpRecord::GetChildren(r) => r.write(buf),
            }
        }
        MULTI_TERMINATOR.write(buf);
    }

    fn read(r: &mut Reader<'a>) -> Result<Self, DecodeError> {
        let mut ops = Vec::new();
        loop {
            let header = MultiHeader::read(r)?;
            if header.done {
                return Ok(MultiRequest { ops });
            }
            let unknown = DecodeError::UnknownValue {
                what: "multi op",
                value: header.op.into(),
            };
            let op = OpCode::from_code(header.op).ok_or(unknown.clone())?;
            ops.push(match op {
                OpCode::Create | OpCode::Create2 | OpCode::CreateContainer => {
                    MultiOpRecord::Create(op, CreateRequest::read(r)?)
                }
                OpCode::CreateTtl => MultiOpRecord::CreateTtl(CreateTtlRequest::read(r)?),
                OpCode::Delete => MultiOpRecord::Delete(DeleteRequest::read(r)?),
                OpCode::SetData => MultiOpRecord::SetData(SetDataRequest::read(r)?),
                OpCode::Check => MultiOpRecord::Check(CheckVersionRequest::read(r)?),
                OpCode::GetData => MultiOpRecord::GetData(PathWatchRequest::read(r)?),
                OpCode::GetChildren => MultiOpRecord::GetChildren(PathWatchRequest::read(r)?),
                _ => return Err(unknown),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_results_and_errors() {
        let mut buf = BytesMut::new();
        MultiHeader {
            op: 15,
            done: false,
            err: 0,
        }
        .write(&mut buf);
        Create2Response {
            path: "/a".into(),
            stat: Stat::default(),
        }
        .write(&mut buf);
        MultiHeader {
            op: -1,
            done: false,
            err: -110,
        }
        .write(&mut buf);
        ErrorResponse { err: -110 }.write(&mut buf);
        MULTI_TERMINATOR.write(&mut buf);
        let results = decode_multi_results(&buf.freeze()).unwrap();
        assert_eq!(
            results,
            vec![
                OpResult::Create {
                    path: "/a".into(),
                    stat: Some(Stat::default())
                },
                OpResult::Error(ErrorCode::NodeExists),
            ]
        );
    }

    #[test]
    fn missing_terminator_is_truncation() {
        let mut buf = BytesMut::new();
        MultiHeader {
            op: 2,
            done: false,
            err: 0,
        }
        .write(&mut buf);
        assert!(matches!(
            decode_multi_results(&buf.freeze()),
            Err(DecodeError::Truncated { .. })
        ));
    }
}
