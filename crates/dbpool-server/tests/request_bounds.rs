//! Hostile request fields at the front door (issue 15): sizes and counts beyond
//! `server.limits`, narrowing numbers, unknown enum values and undecodable messages.
mod common;

use common::*;
use dbpool_proto::v1 as pb;
use dbpool_proto::v1::pool_service_client::PoolServiceClient;
use tonic::transport::Channel;
use tonic::Code;
use tonic_types::StatusExt;

/// The status of a failed call, with its `field` detail.
fn field_of(s: &tonic::Status) -> String {
    s.get_details_error_info()
        .and_then(|i| i.metadata.get("field").cloned())
        .unwrap_or_default()
}

async fn query_err(c: &mut PoolServiceClient<Channel>, r: pb::QueryRequest) -> tonic::Status {
    match c.query(r).await {
        Err(s) => s,
        Ok(resp) => {
            let mut s = resp.into_inner();
            loop {
                match s.message().await {
                    Err(e) => return e,
                    Ok(None) => panic!("the query succeeded"),
                    Ok(Some(_)) => {}
                }
            }
        }
    }
}

#[tokio::test]
async fn batch_size_params_sql_and_statements_are_bounded() {
    let server = TestServer::start_with(&[], |c| {
        c.server.limits.max_params = 3;
        c.server.limits.max_sql_bytes = 100;
        c.server.limits.max_batch_statements = 2;
    })
    .await;
    let mut c = server.pools().await;
    let q = |batch_size: u32, params: usize, sql: &str| pb::QueryRequest {
        pool_id: "default".into(),
        sql: sql.into(),
        params: (0..params).map(|i| p_int(i as i64)).collect(),
        batch_size,
        ..Default::default()
    };
    let e = query_err(&mut c, q(u32::MAX, 0, "SELECT 1")).await;
    assert_eq!(e.code(), Code::InvalidArgument);
    assert_eq!(field_of(&e), "batch_size");
    assert!(e.message().contains("1..=65536"), "{}", e.message());
    // In range: 0 (the pool's default) and the maximum both run.
    for ok in [0, 65_536] {
        let b = query_ipc_req(&mut c, q(ok, 0, "SELECT 1 AS one"))
            .await
            .unwrap();
        assert_eq!(b.iter().map(|b| b.num_rows()).sum::<usize>(), 1);
    }
    let e = query_err(&mut c, q(0, 4, "SELECT ?, ?, ?, ?")).await;
    assert_eq!(
        (e.code(), field_of(&e).as_str()),
        (Code::InvalidArgument, "params")
    );
    let e = query_err(&mut c, q(0, 0, &format!("SELECT '{}'", "x".repeat(200)))).await;
    assert_eq!(
        (e.code(), field_of(&e).as_str()),
        (Code::InvalidArgument, "sql")
    );
    assert!(
        !e.message().contains("xxx"),
        "the SQL is not echoed: {}",
        e.message()
    );

    let stmt = |sql: &str| pb::Statement {
        sql: sql.into(),
        params: vec![],
    };
    let e = c
        .execute_batch(pb::ExecuteBatchRequest {
            pool_id: "default".into(),
            statements: vec![stmt("SELECT 1"), stmt("SELECT 2"), stmt("SELECT 3")],
            transaction: true,
        })
        .await
        .unwrap_err();
    assert_eq!(
        (e.code(), field_of(&e).as_str()),
        (Code::InvalidArgument, "statements")
    );
    let e = c
        .execute(pb::ExecuteRequest {
            pool_id: "default".into(),
            sql: "CREATE TABLE t (a)".into(),
            params: (0..4).map(p_int).collect(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(
        (e.code(), field_of(&e).as_str()),
        (Code::InvalidArgument, "params")
    );
}

/// Runs a Query and decodes its Arrow IPC result.
async fn query_ipc_req(
    c: &mut PoolServiceClient<Channel>,
    r: pb::QueryRequest,
) -> Result<Vec<arrow::record_batch::RecordBatch>, tonic::Status> {
    let mut s = c.query(r).await?.into_inner();
    let mut bytes = Vec::new();
    while let Some(m) = s.message().await? {
        if let Some(pb::query_response::Payload::ArrowIpc(b)) = m.payload {
            bytes.extend(b);
        }
    }
    let reader =
        arrow::ipc::reader::StreamReader::try_new(std::io::Cursor::new(bytes), None).unwrap();
    Ok(reader.map(|b| b.unwrap()).collect())
}

#[tokio::test]
async fn long_ids_are_refused_and_never_echoed_whole() {
    let server = TestServer::start(&[]).await;
    let mut c = server.pools().await;
    let long = "p".repeat(10_000);
    let e = c
        .get_pool_status(pb::GetPoolStatusRequest {
            pool_id: long.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(
        (e.code(), field_of(&e).as_str()),
        (Code::InvalidArgument, "pool_id")
    );
    assert!(e.message().len() < 200, "{}", e.message());
    let e = c
        .commit(pb::EndTransactionRequest {
            transaction_id: long.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(field_of(&e), "transaction_id");
    // An id within the bound but unknown is echoed shortened.
    let e = c
        .get_pool_status(pb::GetPoolStatusRequest {
            pool_id: "q".repeat(128),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    assert!(
        e.message().contains(&format!("{}…", "q".repeat(64))),
        "{}",
        e.message()
    );
    assert!(!e.message().contains(&"q".repeat(65)), "{}", e.message());
    // The daemon still answers.
    c.list_pools(pb::ListPoolsRequest {}).await.unwrap();
}

#[tokio::test]
async fn narrowing_numbers_and_unknown_enums_are_invalid_argument() {
    let server = TestServer::start(&[]).await;
    let mut c = server.pools().await;
    let e = c
        .create_pool(pb::CreatePoolRequest {
            pool_id: "far".into(),
            db_type: "postgresql".into(),
            host: "127.0.0.1".into(),
            port: 70_968,
            database: "postgres".into(),
            username: "postgres".into(),
            lazy: true,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(
        (e.code(), field_of(&e).as_str()),
        (Code::InvalidArgument, "port")
    );
    assert!(e.message().contains("70968"), "{}", e.message());
    // Pool options beyond their ranges (an acquire timeout of 2^64-1 ms).
    let e = c
        .create_pool(pb::CreatePoolRequest {
            pool_id: "slow".into(),
            url: "sqlite:///tmp/dbpool-never-created.db".into(),
            options: Some(pb::PoolOptions {
                acquire_timeout_ms: u64::MAX,
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(
        e.message().contains("acquire_timeout_ms"),
        "{}",
        e.message()
    );
    let e = query_err(
        &mut c,
        pb::QueryRequest {
            pool_id: "default".into(),
            sql: "SELECT 1".into(),
            format: 7,
            ..Default::default()
        },
    )
    .await;
    assert_eq!(
        (e.code(), field_of(&e).as_str()),
        (Code::InvalidArgument, "format")
    );
    let e = c
        .begin_transaction(pb::BeginTransactionRequest {
            pool_id: "default".into(),
            isolation: 42,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(
        (e.code(), field_of(&e).as_str()),
        (Code::InvalidArgument, "isolation")
    );
    let e = c
        .begin_transaction(pb::BeginTransactionRequest {
            pool_id: "default".into(),
            idle_timeout_ms: u64::MAX,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(
        (e.code(), field_of(&e).as_str()),
        (Code::InvalidArgument, "idle_timeout_ms")
    );
    assert!(e.message().contains("1..=600000"), "{}", e.message());
}

#[tokio::test]
async fn undecodable_requests_are_invalid_argument() {
    let server = TestServer::start(&[]).await;
    let mut grpc = tonic::client::Grpc::new(server.channel().await);
    // QueryRequest with `sql` (field 2) holding bytes that are not UTF-8, then a
    // truncated message: sent raw, as no typed client can.
    for body in [
        vec![0x0a, 0x01, b'd', 0x12, 0x02, 0xff, 0xfe],
        vec![0x12, 0x05, b'a'],
    ] {
        grpc.ready().await.unwrap();
        let path =
            tonic::codegen::http::uri::PathAndQuery::from_static("/dbpool.v1.PoolService/Execute");
        let e = grpc
            .unary::<_, pb::ExecuteResponse, _>(tonic::Request::new(RawBytes(body)), path, RawCodec)
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "{}", e.message());
    }
}

#[tokio::test]
async fn an_unknown_insert_mode_is_refused() {
    let server = TestServer::start(&[]).await;
    let mut f = server.flight().await;
    let cmd = pb::BulkInsertCommand {
        pool_id: "default".into(),
        table: "t".into(),
        mode: 9,
    };
    let any = prost_types::Any {
        type_url: "type.googleapis.com/dbpool.v1.BulkInsertCommand".into(),
        value: prost::Message::encode_to_vec(&cmd),
    };
    let batch = arrow::record_batch::RecordBatch::try_from_iter([(
        "a",
        std::sync::Arc::new(arrow::array::Int64Array::from(vec![1])) as arrow::array::ArrayRef,
    )])
    .unwrap();
    let data = arrow_flight::encode::FlightDataEncoderBuilder::new()
        .with_flight_descriptor(Some(arrow_flight::FlightDescriptor::new_cmd(
            prost::Message::encode_to_vec(&any),
        )))
        .build(futures::stream::iter([Ok(batch)]));
    let e = match f.do_put(data).await {
        Err(arrow_flight::error::FlightError::Tonic(s)) => *s,
        Err(other) => panic!("not a status: {other:?}"),
        Ok(mut results) => match futures::StreamExt::next(&mut results).await {
            Some(Err(arrow_flight::error::FlightError::Tonic(s))) => *s,
            other => panic!("the insert was not refused: {other:?}"),
        },
    };
    assert_eq!(
        (e.code(), field_of(&e).as_str()),
        (Code::InvalidArgument, "mode")
    );
    // Nothing was created.
    let e = query_err(
        &mut server.pools().await,
        pb::QueryRequest {
            pool_id: "default".into(),
            sql: "SELECT a FROM t".into(),
            ..Default::default()
        },
    )
    .await;
    assert!(e.message().contains("no such table"), "{}", e.message());
}

/// Request bytes sent as they are.
struct RawBytes(Vec<u8>);

/// Encodes [`RawBytes`] verbatim; decodes responses as prost messages.
#[derive(Default)]
struct RawCodec;

impl tonic::codec::Codec for RawCodec {
    type Encode = RawBytes;
    type Decode = pb::ExecuteResponse;
    type Encoder = RawEncoder;
    type Decoder = tonic_prost::ProstDecoder<pb::ExecuteResponse>;
    fn encoder(&mut self) -> RawEncoder {
        RawEncoder
    }
    fn decoder(&mut self) -> Self::Decoder {
        Default::default()
    }
}

struct RawEncoder;

impl tonic::codec::Encoder for RawEncoder {
    type Item = RawBytes;
    type Error = tonic::Status;
    fn encode(
        &mut self,
        item: RawBytes,
        dst: &mut tonic::codec::EncodeBuf<'_>,
    ) -> Result<(), tonic::Status> {
        use bytes::BufMut;
        dst.put_slice(&item.0);
        Ok(())
    }
}
