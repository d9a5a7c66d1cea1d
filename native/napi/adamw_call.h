// The optimizer-step entry points (parse + validate + run): craftReduce (surgery pass 1
// for the trainer, no writes), adamwFused (surgery pass 2 fused with AdamW) and adamw
// (AdamW alone). Every check happens before any kernel runs, so a bad call changes nothing.
#pragma once
#include <napi.h>

namespace craftgrad {

// Adds craftReduce, adamwFused and adamw to the module's exports.
void registerAdamW(Napi::Env env, Napi::Object exports);

}  // namespace craftgrad
