;; CPU-bound workload: FNV-1a over a 64 KiB buffer, `rounds` times.
(module
  (memory (export "memory") 2)
  (func (export "run") (param $rounds i32) (result i32)
    (local $h i32) (local $i i32) (local $r i32)
    (local.set $h (i32.const 0x811c9dc5))
    (loop $round
      (local.set $i (i32.const 0))
      (loop $byte
        (local.set $h (i32.mul (i32.xor (local.get $h) (i32.load8_u (local.get $i))) (i32.const 0x01000193)))
        (i32.store8 (local.get $i) (local.get $h))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br_if $byte (i32.lt_u (local.get $i) (i32.const 65536))))
      (local.set $r (i32.add (local.get $r) (i32.const 1)))
      (br_if $round (i32.lt_u (local.get $r) (local.get $rounds))))
    (local.get $h)))
