//===- KVC.h - kvc dialect ---------------------------------------*- C++ -*-===//
#ifndef KVC_DIALECT_KVC_IR_KVC_H
#define KVC_DIALECT_KVC_IR_KVC_H

#include "mlir/Bytecode/BytecodeOpInterface.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/BuiltinAttributes.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/Dialect.h"
#include "mlir/IR/OpDefinition.h"
#include "mlir/Interfaces/InferTypeOpInterface.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"

#include "kvc/Dialect/KVC/IR/KVCDialect.h.inc"
#include "kvc/Dialect/KVC/IR/KVCEnums.h.inc"

#define GET_ATTRDEF_CLASSES
#include "kvc/Dialect/KVC/IR/KVCAttrs.h.inc"

#include "kvc/Dialect/KVC/IR/KVCTypeInterfaces.h.inc"

#define GET_TYPEDEF_CLASSES
#include "kvc/Dialect/KVC/IR/KVCTypes.h.inc"

#define GET_OP_CLASSES
#include "kvc/Dialect/KVC/IR/KVCOps.h.inc"

#endif // KVC_DIALECT_KVC_IR_KVC_H
