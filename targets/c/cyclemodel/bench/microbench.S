/* Sequences whose Cortex-M4 cycle counts the TRM gives exactly, each measured by the cycle
 * model as one window: `run` (the window's arm) calls `mark`, the sequence, `mark` again, then
 * `done` (emit). The empty sequence gives what the calls themselves cost; tests/test_cycle_model.py
 * holds the expected counts. Runs on QEMU's netduinoplus2 (STM32F405): code and `table` in
 * flash, `scratch` in SRAM; it ends by semihosting. */
    .syntax unified
    .cpu cortex-m4
    .fpu fpv4-sp-d16
    .thumb

    .section .vectors, "a"
    .word 0x20010000          /* initial stack */
    .word reset + 1

    .text
    .global mark, done, run
    .type mark, %function
    .type done, %function
    .type run, %function
    .type reset, %function

    .balign 16
mark:                         /* a window's start (first call) and end (later calls) */
    bx lr
    .balign 16
done:                         /* emits the window */
    bx lr

/* run: r0 = a sequence (Thumb address), r4 and r5 its operands' addresses. */
    .balign 16
run:
    push {r6, lr}
    mov r6, r0
    bl mark
    blx r6
    bl mark
    bl done
    pop {r6, pc}

/* Each sequence ends in bx lr, so the call and return around it are the empty one's. */
    .macro sequence name
    .balign 16
    .global \name
    .type \name, %function
\name:
    .endm

/* A sequence of one instruction `count` times. */
    .macro repeated name, count, insn:vararg
    sequence \name
    .rept \count
    \insn
    .endr
    bx lr
    .endm

sequence seq_empty
    bx lr
repeated seq_alu, 16, add r1, r1, r2
repeated seq_vadd, 16, vadd.f32 s0, s1, s2
repeated seq_vmla, 16, vmla.f32 s0, s1, s2
sequence seq_vldm8
    vldmia r4, {s0-s7}
    bx lr
sequence seq_vldm16
    vldmia r4, {s0-s15}
    bx lr
repeated seq_vldr, 4, vldr s0, [r4]
sequence seq_ldm4
    ldmia r4, {r0-r3}
    bx lr
sequence seq_stm4
    stmia r4, {r0-r3}
    bx lr
sequence seq_ldr8
    ldr r0, [r4]
    ldr r1, [r4, #4]
    ldr r2, [r4, #8]
    ldr r3, [r4, #12]
    ldr r0, [r4, #16]
    ldr r1, [r4, #20]
    ldr r2, [r4, #24]
    ldr r3, [r4, #28]
    bx lr
sequence seq_ldr_dependent
    str r4, [r4]              /* scratch[0] holds scratch's own address: */
    ldr r1, [r4]
    ldr r2, [r1]              /* its address is the load before's result */
    bx lr
sequence seq_ldr_alu
    .rept 4
    ldr r0, [r4]
    add r1, r1, r2
    .endr
    bx lr
repeated seq_mul, 8, mul r1, r2, r3
sequence seq_branch
    .rept 4
    b 1f
    nop                       /* skipped: a branch to the next instruction looks untaken */
1:
    .endr
    bx lr
sequence seq_cond_not_taken
    cmp r0, r0
    .rept 4
    bne 1f
1:
    .endr
    bx lr
sequence seq_cond_taken
    .rept 4
    cmp r0, r0
    beq 1f
    nop
1:
    .endr
    bx lr
repeated seq_mla, 8, mla r1, r2, r3, r1
repeated seq_umlal, 4, umlal r0, r1, r2, r3
sequence seq_sdiv             /* r4 / 7: the model's fixed divide time whatever the operands */
    movs r2, #7
    .rept 4
    sdiv r1, r4, r2
    .endr
    bx lr
repeated seq_vdiv, 4, vdiv.f32 s0, s1, s2
repeated seq_vsqrt, 2, vsqrt.f32 s0, s1
sequence seq_ldrd_strd
    ldrd r0, r1, [r4]
    strd r0, r1, [r4, #8]
    bx lr
sequence seq_vpush_vpop       /* two doubles: four words each way */
    vpush {d8-d9}
    vpop {d8-d9}
    bx lr
sequence seq_flash_data       /* r5: two lines of `table` in flash */
    ldr r0, [r5]
    ldr r1, [r5, #16]
    bx lr
sequence seq_far_call         /* a function in flash far from its caller: not prefetched */
    push {lr}
    bl far
    pop {pc}

    .balign 16
reset:
    ldr r0, =0xE000ED88       /* CPACR: CP10 and CP11 full access (the FPU on) */
    ldr r1, [r0]
    orr r1, r1, #(0xF << 20)
    str r1, [r0]
    dsb
    isb
    ldr r4, =scratch
    ldr r5, =table
    .irp seq, seq_empty, seq_alu, seq_vadd, seq_vmla, seq_vldm8, seq_vldm16, seq_vldr, seq_ldm4, seq_stm4, seq_ldr8, seq_ldr_dependent, seq_ldr_alu, seq_mul, seq_branch, seq_cond_not_taken, seq_cond_taken, seq_mla, seq_umlal, seq_sdiv, seq_vdiv, seq_vsqrt, seq_ldrd_strd, seq_vpush_vpop
    ldr r0, =\seq + 1
    bl run
    .endr
    /* Flash: the data twice (its lines miss, then hit), then two new lines; a far call twice;
     * a loop twice. */
    ldr r0, =seq_flash_data + 1
    bl run
    ldr r0, =seq_flash_data + 1
    bl run
    add r5, r5, #64
    ldr r0, =seq_flash_data + 1
    bl run
    ldr r0, =seq_far_call + 1
    bl run
    ldr r0, =seq_far_call + 1
    bl run
    /* A loop in a line of its own, twice: its line misses on the first pass only. */
    ldr r0, =seq_loop + 1
    bl run
    ldr r0, =seq_loop + 1
    bl run
    mov r0, #0x18             /* SYS_EXIT */
    ldr r1, =0x20026          /* ADP_Stopped_ApplicationExit */
    bkpt 0xab
    b .
    .ltorg

    .balign 256
far:
    bx lr

    .balign 256
    .global seq_loop
    .type seq_loop, %function
seq_loop:                     /* four passes of a two-instruction loop */
    movs r0, #4
1:
    subs r0, r0, #1
    bne 1b
    bx lr

    .section .rodata
    .balign 16
table:
    .rept 32
    .word 0x3f800000
    .endr

    .bss
    .balign 16
scratch:
    .space 64
