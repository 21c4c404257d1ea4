/*
 * Opcodes of the AFS Volume Location service (VL, Rx service 52 on UDP port
 * 7003; the YFS variant, 2503, keeps them) used by vl.xg. A header of its own
 * so that C code and other interfaces can share the numbers.
 */
#ifndef RXRPC_VL_OPCODES_H
#define RXRPC_VL_OPCODES_H

#define VL_OPCODE_GETSTATS          513
#define VL_OPCODE_PROBE             514
#define VL_OPCODE_GETADDRS          515
#define VL_OPCODE_CREATEENTRYN      517
#define VL_OPCODE_GETENTRYBYNAMEN   519
#define VL_OPCODE_GETENTRYBYNAMEU   527
#define VL_OPCODE_REGADDR           532
#define VL_OPCODE_GETADDRSU         533
#define VL_OPCODE_LISTATTRIBUTESN2  534
/* Answered by servers that know service upgrade (YFS, kAFS); OpenAFS 1.8 aborts it with RXGEN_OPCODE. */
#define VL_OPCODE_GETCAPABILITIES   65537

#endif
