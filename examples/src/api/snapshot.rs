//! The services' snapshot encoding (postcard).

/// Encodes a snapshot of a serializable state.
pub fn encode<T: serde::Serialize>(state: &T) -> Result<bytes::Bytes, easyraft::BoxError> {
    Ok(postcard::to_allocvec(state)?.into())
}

/// Decodes a snapshot.
pub fn decode<T: serde::de::DeserializeOwned>(data: &[u8]) -> Result<T, easyraft::BoxError> {
    Ok(postcard::from_bytes(data)?)
}
