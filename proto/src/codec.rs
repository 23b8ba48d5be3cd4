//! The gRPC codec of every isms service: prost, except that bytes which do not decode as the
//! expected message are the sender's fault (`INVALID_ARGUMENT`, naming the message and what was
//! wrong) rather than tonic's default `INTERNAL`.
//!
//! On the server this codec decodes requests, so a malformed request is reported as the
//! client's mistake. A client that receives a response which does not decode sees the same
//! code; the message says which response type failed.

use std::marker::PhantomData;

use prost::Message;
use tonic::codec::{BufferSettings, Codec, DecodeBuf, Decoder};
use tonic::Status;
use tonic_prost::{ProstCodec, ProstEncoder};

/// prost encoding, with decode failures reported as `INVALID_ARGUMENT`.
#[derive(Debug, Clone)]
pub struct IsmsCodec<T, U> {
    _types: PhantomData<(T, U)>,
}

impl<T, U> Default for IsmsCodec<T, U> {
    fn default() -> Self {
        IsmsCodec {
            _types: PhantomData,
        }
    }
}

impl<T, U> Codec for IsmsCodec<T, U>
where
    T: Message + Send + 'static,
    U: Message + Default + Send + 'static,
{
    type Encode = T;
    type Decode = U;
    type Encoder = ProstEncoder<T>;
    type Decoder = IsmsDecoder<U>;

    fn encoder(&mut self) -> Self::Encoder {
        ProstCodec::<T, U>::raw_encoder(BufferSettings::default())
    }

    fn decoder(&mut self) -> Self::Decoder {
        IsmsDecoder { _type: PhantomData }
    }
}

/// Decodes `U`, turning a prost decode error into `INVALID_ARGUMENT`.
#[derive(Debug, Clone)]
pub struct IsmsDecoder<U> {
    _type: PhantomData<U>,
}

impl<U: Message + Default> Decoder for IsmsDecoder<U> {
    type Item = U;
    type Error = Status;

    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<U>, Status> {
        U::decode(buf).map(Some).map_err(|e| {
            Status::invalid_argument(format!(
                "the message is not a valid protobuf {}: {e}",
                message_name::<U>()
            ))
        })
    }

    fn buffer_settings(&self) -> BufferSettings {
        BufferSettings::default()
    }
}

/// The message's own name (`AppendRequest`), without the Rust module path.
fn message_name<U>() -> &'static str {
    let full = std::any::type_name::<U>();
    full.rsplit("::").next().unwrap_or(full)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_message_name_drops_the_module_path() {
        assert_eq!(message_name::<crate::v1::AppendRequest>(), "AppendRequest");
    }
}
