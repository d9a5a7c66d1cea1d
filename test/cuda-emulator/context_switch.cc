// cgemu_switch_context(saveSp, loadSp) for x86-64 (System V): pushes the callee-saved
// registers and the SSE/x87 control words, stores rsp in *saveSp, loads loadSp and pops
// the same from there. Hidden: not part of the addon's exports.
#include "context_switch.h"

#if defined(__x86_64__) && !defined(CGEMU_USE_UCONTEXT)
asm(R"(
  .text
  .globl cgemu_switch_context
  .hidden cgemu_switch_context
  .type cgemu_switch_context, @function
cgemu_switch_context:
  pushq %rbp
  pushq %rbx
  pushq %r12
  pushq %r13
  pushq %r14
  pushq %r15
  subq $8, %rsp
  stmxcsr (%rsp)
  fnstcw 4(%rsp)
  movq %rsp, (%rdi)
  movq %rsi, %rsp
  ldmxcsr (%rsp)
  fldcw 4(%rsp)
  addq $8, %rsp
  popq %r15
  popq %r14
  popq %r13
  popq %r12
  popq %rbx
  popq %rbp
  ret
  .size cgemu_switch_context, .-cgemu_switch_context
  .section .note.GNU-stack,"",@progbits
  .text
)");
#endif
