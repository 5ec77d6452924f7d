//! The protobuf codec of the dbpool services: tonic-prost's, except that a request that
//! does not decode (malformed protobuf, a string field that is not UTF-8) is the
//! client's fault and answers INVALID_ARGUMENT, not INTERNAL.
use std::marker::PhantomData;
use tonic::codec::{BufferSettings, Codec, DecodeBuf, Decoder};
use tonic::Status;
use tonic_prost::{ProstCodec, ProstEncoder};

/// The codec the generated PoolService server and client use.
#[derive(Debug, Clone)]
pub struct StrictCodec<T, U> {
    _pd: PhantomData<(T, U)>,
}

impl<T, U> Default for StrictCodec<T, U> {
    fn default() -> Self {
        StrictCodec { _pd: PhantomData }
    }
}

impl<T, U> Codec for StrictCodec<T, U>
where
    T: prost::Message + Send + 'static,
    U: prost::Message + Default + Send + 'static,
{
    type Encode = T;
    type Decode = U;
    type Encoder = ProstEncoder<T>;
    type Decoder = StrictDecoder<U>;

    fn encoder(&mut self) -> Self::Encoder {
        ProstCodec::<T, U>::default().encoder()
    }

    fn decoder(&mut self) -> Self::Decoder {
        StrictDecoder {
            _pd: PhantomData,
            buffer_settings: BufferSettings::default(),
        }
    }
}

/// Decodes `U`; a decode error is INVALID_ARGUMENT naming the message and field prost
/// reports (the bytes themselves are never echoed).
#[derive(Debug, Clone)]
pub struct StrictDecoder<U> {
    _pd: PhantomData<U>,
    buffer_settings: BufferSettings,
}

impl<U: prost::Message + Default> Decoder for StrictDecoder<U> {
    type Item = U;
    type Error = Status;

    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<U>, Status> {
        U::decode(buf)
            .map(Some)
            .map_err(|e| Status::invalid_argument(format!("the message does not decode: {e}")))
    }

    fn buffer_settings(&self) -> BufferSettings {
        self.buffer_settings
    }
}

#[cfg(test)]
mod tests {
    use crate::v1::QueryRequest;
    use prost::Message;

    #[test]
    fn invalid_utf8_is_a_decode_error_naming_the_field() {
        // Field 2 (sql), wire type 2, length 2, bytes that are not UTF-8.
        let bytes = [0x12, 0x02, 0xff, 0xfe];
        let e = QueryRequest::decode(&bytes[..]).unwrap_err().to_string();
        assert!(e.contains("QueryRequest.sql"), "{e}");
    }
}
