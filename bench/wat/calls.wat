;; Call-heavy workload: small functions called in a loop, the shape of compiled code with helpers
;; (a point type's add/scale/dot over an array in memory) that the compiler did not inline.
(module
  (memory (export "memory") 16)
  (func $load_x (param $p i32) (result f64) (f64.load (local.get $p)))
  (func $load_y (param $p i32) (result f64) (f64.load offset=8 (local.get $p)))
  (func $scale (param $v f64) (param $k f64) (result f64) (f64.mul (local.get $v) (local.get $k)))
  (func $dot (param $ax f64) (param $ay f64) (param $bx f64) (param $by f64) (result f64)
    (f64.add (f64.mul (local.get $ax) (local.get $bx)) (f64.mul (local.get $ay) (local.get $by))))
  (func $wrap (param $i i32) (result i32) (i32.and (local.get $i) (i32.const 0xfff)))
  (func (export "run") (param $n i32) (result i32)
    (local $i i32) (local $p i32) (local $acc f64) (local $x f64) (local $y f64)
    (loop $fill
      (f64.store (i32.shl (local.get $i) (i32.const 4)) (f64.convert_i32_u (local.get $i)))
      (f64.store offset=8 (i32.shl (local.get $i) (i32.const 4)) (f64.const 0.5))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $fill (i32.lt_u (local.get $i) (i32.const 4096))))
    (local.set $i (i32.const 0))
    (loop $next
      (local.set $p (i32.shl (call $wrap (local.get $i)) (i32.const 4)))
      (local.set $x (call $scale (call $load_x (local.get $p)) (f64.const 0.25)))
      (local.set $y (call $scale (call $load_y (local.get $p)) (f64.const 2)))
      (local.set $acc (f64.add (local.get $acc) (call $dot (local.get $x) (local.get $y) (local.get $y) (local.get $x))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $next (i32.lt_u (local.get $i) (local.get $n))))
    (i32.trunc_sat_f64_u (local.get $acc))))
