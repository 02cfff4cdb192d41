(component
  (component $B
    (core module $m
      (memory (export "mem") 1)
      (global $bump (mut i32) (i32.const 1024))
      (func (export "realloc") (param i32 i32 i32 i32) (result i32)
        (local $p i32)
        (local.set $p
          (i32.and
            (i32.add (global.get $bump) (i32.sub (local.get 2) (i32.const 1)))
            (i32.sub (i32.const 0) (local.get 2))))
        (global.set $bump (i32.add (local.get $p) (local.get 3)))
        (local.get $p))
      (func (export "greet") (param $p i32) (param $l i32) (param $np i32) (param $nl i32) (result i32)
        (local $out i32) (local $i i32) (local $sum i32)
        (local.set $out (global.get $bump))
        (global.set $bump (i32.add (global.get $bump) (i32.add (local.get $l) (i32.const 1))))
        (memory.copy (local.get $out) (local.get $p) (local.get $l))
        (i32.store8 (i32.add (local.get $out) (local.get $l)) (i32.const 33))
        (block $done
          (loop $loop
            (br_if $done (i32.ge_u (local.get $i) (local.get $nl)))
            (local.set $sum
              (i32.add (local.get $sum)
                (i32.load (i32.add (local.get $np) (i32.mul (local.get $i) (i32.const 4))))))
            (local.set $i (i32.add (local.get $i) (i32.const 1)))
            (br $loop)))
        (i32.store (i32.const 16) (local.get $out))
        (i32.store (i32.const 20) (i32.add (local.get $l) (i32.const 1)))
        (i32.store (i32.const 24) (local.get $sum))
        (i32.const 16)))
    (core instance $i (instantiate $m))
    (func (export "greet") (param "name" string) (param "counts" (list u32)) (result (tuple string u32))
      (canon lift (core func $i "greet") (memory (core memory $i "mem")) (realloc (core func $i "realloc")))))
  (component $A
    (import "greet" (func $greet (param "name" string) (param "counts" (list u32)) (result (tuple string u32))))
    (core module $mem
      (memory (export "mem") 1)
      (global $bump (mut i32) (i32.const 4096))
      (func (export "realloc") (param i32 i32 i32 i32) (result i32)
        (local $p i32)
        (local.set $p
          (i32.and
            (i32.add (global.get $bump) (i32.sub (local.get 2) (i32.const 1)))
            (i32.sub (i32.const 0) (local.get 2))))
        (global.set $bump (i32.add (local.get $p) (local.get 3)))
        (local.get $p)))
    (core instance $mi (instantiate $mem))
    (core func $greet_lowered (canon lower (func $greet) (memory (core memory $mi "mem")) (realloc (core func $mi "realloc"))))
    (core module $main
      (import "env" "mem" (memory 1))
      (import "env" "greet" (func $greet (param i32 i32 i32 i32 i32)))
      (data (i32.const 100) "basalt")
      (data (i32.const 200) "\01\00\00\00\02\00\00\00\03\00\00\00")
      (func (export "run") (result i32)
        (call $greet (i32.const 100) (i32.const 6) (i32.const 200) (i32.const 3) (i32.const 300))
        (if (i32.ne (i32.load (i32.const 304)) (i32.const 7)) (then (return (i32.const 1))))
        (if (i32.ne (i32.load (i32.const 308)) (i32.const 6)) (then (return (i32.const 1))))
        (if (i32.ne (i32.load8_u (i32.load (i32.const 300))) (i32.const 98)) (then (return (i32.const 1))))
        (if (i32.ne (i32.load8_u (i32.add (i32.load (i32.const 300)) (i32.const 6))) (i32.const 33))
          (then (return (i32.const 1))))
        (i32.const 0)))
    (core instance $m (instantiate $main
      (with "env" (instance (export "mem" (memory $mi "mem")) (export "greet" (func $greet_lowered))))))
    (func (export "run") (result (result))
      (canon lift (core func $m "run"))))
  (instance $b (instantiate $B))
  (instance $a (instantiate $A (with "greet" (func $b "greet"))))
  (instance $run (export "run" (func $a "run")))
  (export "wasi:cli/run@0.2.0" (instance $run)))
