/**
 * Interface files for the generator's tests, kept in memory (the tests hand
 * the generator a readFile over this map). The kitchen sink touches every
 * construct the generator supports.
 */
import { posix } from 'node:path';
import { GenerateOptions } from '../../lib/rxgen';

export type Files = Record<string, string>;

export function readFrom(files: Files): (path: string) => string | undefined {
  return (path) => files[posix.normalize(path)];
}

/** Options for generating `main` out of `files`. */
export function optionsFor(files: Files, main: string, extra: Partial<GenerateOptions> = {}): GenerateOptions {
  return { fileName: main, readFile: readFrom(files), ...extra };
}

export const KITCHEN: Files = {
  '/ks/ks_opcodes.h': `/* Opcodes, as #defines in a header with an include guard. */
#ifndef KS_OPCODES_H
#define KS_OPCODES_H
#define KS_OP_BASE 1000 /* a comment after the value */
#define KS_OP_ECHO 1001
#define KS_OP_ARRAYS \\
        1002
#endif
`,
  '/ks/ks_errors.et': `# Errors of the kitchen sink.
error_table KS
  ec KS_BROKEN, "it broke"
  ec KS_GONE = 3, "it is gone"
end
`,
  '/ks/ks.xg': `/* Every construct of rxgen's language. */
%#include <afs/param.h>
%#define KS_PASS_MAX 7 /* only for C, but usable as a size */
#include "ks_opcodes.h"
#include "ks_opcodes.h"
#include "ks_errors.et"

#ifndef KS_NOT_DEFINED
const KS_INCLUDED = 1;
#else
this ) is ( skipped
#endif

#if defined(KS_OP_BASE) && KS_OP_BASE > 100
const KS_IF = 1;
#elif 1
const KS_IF = 2;
#endif

#ifdef KS_OP_BASE
#if 0
#error not here
#endif
#endif

const KS_MAXNAME = 16;
const KS_HEX = 0x7f;
const KS_NEG = -5;
const KS_ALIAS = KS_MAXNAME;
const KS_STR = "text";
const KS_OCT = 010;

enum ks_color { KS_RED, KS_GREEN = 5, KS_BLUE, KS_PINK = KS_HEX };

typedef afs_int32 ks_int;
typedef string ks_name<KS_MAXNAME>;
typedef opaque ks_blob<32>;
typedef opaque ks_key[8];
typedef afs_uint32 ks_list<4>;
typedef afs_int32 ks_any<>;

struct ks_scalars {
	afs_int32 i;
	afs_uint32 u;
	int ii;
	unsigned int uu;
	unsigned ulone;
	short s;
	unsigned short us;
	char c;
	unsigned char uc;
	bool b;
	afs_int64 h;
	afs_uint64 uh;
	hyper hh;
	float f;
	double d;
	ks_color color;
	enum ks_color color2;
	ks_int alias;
};

struct ks_arrays {
	char name[KS_MAXNAME];
	afs_int32 fixed[3];
	afs_uint32 var<5>;
	afs_int32 unbounded<>;
	string str<KS_MAXNAME>;
	string anystr<>;
	opaque fixedop[5];
	opaque varop<KS_PASS_MAX>;
	ks_name names[2];
	struct ks_scalars nested;
	ks_list lists<2>;
	ks_key key;
	ks_blob blob;
	ks_any any;
};

typedef struct ks_node *ks_nodeptr;

struct ks_node {
	afs_int32 value;
	ks_nodeptr next;
};

struct ks_optional {
	afs_int32 *maybe;
	ks_name *maybeName;
};

union ks_u switch (ks_color kind) {
	case KS_RED: afs_int32 red;
	case KS_GREEN: void;
	case 6: ks_name blue;
	default: opaque other<4>;
};

union ks_b switch (bool flag) {
	case TRUE: afs_uint32 yes;
	case FALSE: void;
};

union ks_nodefault switch (afs_int32 which) {
	case 1: afs_int32 one;
	case 2: string two<8>;
};

struct ks_ids {
	afsUUID uuid;
	struct afs_time64 when;
};

package KS_
prefix S
statindex 42
splitprefix IN=Begin OUT=Finish;

Echo(IN ks_scalars *input, OUT ks_scalars *output) = KS_OP_ECHO;
Arrays(INOUT ks_arrays *a, IN afs_int32 add, OUT afs_int32 *sum) = KS_OP_ARRAYS;
Carry(IN afs_int32 a, afs_int32 b, OUT afs_int32 *c, afs_int32 *d) = 1003;
Carry2(afs_int32 e, IN afs_int32 f) = 1004;
Union(IN ks_u *u, ks_b *b, ks_nodefault *n, OUT ks_u *u2) = 1005;
List(IN ks_nodeptr head, ks_optional *opt, OUT afs_int32 *count) = 1006;
Ids(INOUT ks_ids *ids) = 1007;
proc Fetch(IN afs_int32 len, OUT afs_int32 *status) split = 1008;
Store(IN afs_int32 len, OUT afs_int32 *status) split = 1009;
Nothing() multi = 1010;
Fail(IN afs_int32 code) = 1011;
Names(IN string name<KS_MAXNAME>, OUT string upper<KS_MAXNAME>) = 1012;

package KT_
startingopcode 50
One(IN afs_int32 x);
Two(OUT afs_int32 *y);
`,
};
