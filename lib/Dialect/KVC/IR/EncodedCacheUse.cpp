//===- EncodedCacheUse.cpp - the in-place rule of encoded-cache appends ----===//
#include "kvc/Dialect/KVC/IR/EncodedCacheUse.h"
#include "kvc/Dialect/KVC/IR/KVC.h"

using namespace mlir;

/// Whether `reader` reads after `append` or apart from it (another block).
static bool readsAfter(Operation *reader, Operation *append) {
  return reader->getBlock() != append->getBlock() || append->isBeforeInBlock(reader);
}

Operation *mlir::kvc::findReadAfterInPlaceAppend(Value cache, bool viewReadersRead) {
  for (Operation *user : cache.getUsers()) {
    if (!isa<CacheAppendOp>(user))
      continue;
    for (Operation *other : cache.getUsers()) {
      if (other == user)
        continue;
      Operation *late = readsAfter(other, user) ? other : nullptr;
      if (!late && viewReadersRead && isa<CacheViewOp>(other))
        for (Value r : other->getResults())
          for (Operation *reader : r.getUsers())
            if (!late && readsAfter(reader, user))
              late = reader;
      if (late)
        return late;
    }
  }
  return nullptr;
}

Operation *mlir::kvc::findAppendOutsideDefiningBlock(Value cache) {
  Block *def = isa<BlockArgument>(cache) ? cast<BlockArgument>(cache).getOwner()
                                         : cache.getDefiningOp()->getBlock();
  for (Operation *user : cache.getUsers())
    if (isa<CacheAppendOp>(user) && user->getBlock() != def)
      return user;
  return nullptr;
}
