// Internal error type: thrown inside the codec, turned into a status + thread-local message at
// the C ABI boundary (CApi.cpp).
#ifndef KVC_RUNTIME_CODEC_ERROR_H
#define KVC_RUNTIME_CODEC_ERROR_H

#include "kvc/Runtime/Codec.h"

#include <stdexcept>
#include <string>

namespace kvc::codec {

class CodecError : public std::runtime_error {
public:
  CodecError(kvc_codec_status status, const std::string& message)
      : std::runtime_error(message), status_(status) {}
  kvc_codec_status status() const { return status_; }

private:
  kvc_codec_status status_;
};

[[noreturn]] inline void fail(kvc_codec_status status, const std::string& message) {
  throw CodecError(status, message);
}

[[noreturn]] inline void corrupt(const std::string& message) {
  throw CodecError(KVC_CODEC_ERR_CORRUPT, "corrupt codec data: " + message);
}

} // namespace kvc::codec

#endif
