;; The per-pixel loop of one-pass drawing (one-pass.ts) for big-endian float32
;; rows as a FITS file stores them, four pixels at a time with 128-bit SIMD.
;; `npm run wasm` turns this file into float-kernel-wasm.ts; a unit test checks
;; that the two agree.
;;
;; An "area" holds what one picture row gathers: `sums`, float64 per frame
;; column (n + 4 of them), and `others` and `whites`, float64 per picture
;; column (m + 1: the last is a sink for the columns past the row).
;;
;; sort(src, n, lowFrom, lowTo, highFrom, highTo, centre, weight,
;;      sums, others, whites, columnMap, kept, keptSpan, f) -> count
;;   src         byte offset of the row's first pixel, big-endian float32
;;   n           pixels in the row; the loop goes on to the next multiple of
;;               4, so up to 3 pixels (12 bytes) past the row are read and 3
;;               more columns written; the caller leaves room for them and
;;               ignores them
;;   A pixel v of frame column x, by where it falls:
;;   - between the windows, lowTo < v < highFrom (nearly all of them):
;;     sums[x] += (v - centre) x weight, in float64;
;;   - otherwise others[j] += weight x share for the (at most two) picture
;;     columns j that frame column x falls on, from its record at
;;     columnMap + 32x (int32 j1, j2; float64 share1, share2), and then:
;;     - white, v > highTo and finite: whites[j] likewise, and the white
;;       tally += weight;
;;     - black, v < lowFrom and finite: the black tally += weight;
;;     - anything else (inside a window, NaN, the infinities), if x < n:
;;       listed, x appended to the int32 list at `kept`, v (in the machine's
;;       byte order) to the float32 list keptSpan bytes after it and the
;;       frame row f to the int32 list keptSpan bytes after that; the number
;;       listed is returned.
;;   Only groups of four with a pixel outside take the scalar path; the
;;   others add their sums with the lanes outside masked to +0.0.
;;
;; columns(sums, others, whites, n, spans, m, row, plane, rows)
;;   per picture column j < m, from the record at spans + 32j (int32 from,
;;   to, left, right; float64 leftWeight, rightWeight, as raster.ts's Spans):
;;   adds to the picture's float32 at row + 4j the sums over [from, to) plus
;;   the partly covered columns by weight (left or right -1 when none); at
;;   row + plane + 4j the pixels between the windows (`rows` frame rows times
;;   the frame columns covered, less others[j]); at row + 2 plane + 4j
;;   whites[j]. Then the area is zeroed for the next picture row. The picture
;;   is float32 (a picture pixel's few dozen frame pixels need no more), so a
;;   first frame faults in half the fresh memory.
;;
;; keys and lows (below) count a sample of rows by sort key, for the windows.
(module
  (memory (export "memory") 1)
  ;; White and black pixels of the frame so far, by weight (a straddling row
  ;; counts once in all), so the clip's ranks need no sum over the picture.
  (global $whiteTally (mut f64) (f64.const 0))
  (global $blackTally (mut f64) (f64.const 0))
  (func (export "resetTallies")
    (global.set $whiteTally (f64.const 0))
    (global.set $blackTally (f64.const 0)))
  (func (export "whiteTally") (result f64) (global.get $whiteTally))
  (func (export "blackTally") (result f64) (global.get $blackTally))
  (func (export "sort")
    (param $src i32) (param $n i32)
    (param $lowFrom f32) (param $lowTo f32) (param $highFrom f32) (param $highTo f32)
    (param $centre f64) (param $weight f64)
    (param $sums i32) (param $others i32) (param $whites i32) (param $columnMap i32)
    (param $kept i32) (param $keptSpan i32) (param $f i32)
    (result i32)
    (local $x i32) (local $count i32) (local $at i32) (local $bits i32)
    (local $v v128) (local $inside v128) (local $lt v128) (local $hf v128)
    (local $c v128) (local $w v128)
    (local.set $lt (f32x4.splat (local.get $lowTo)))
    (local.set $hf (f32x4.splat (local.get $highFrom)))
    (local.set $c (f64x2.splat (local.get $centre)))
    (local.set $w (f64x2.splat (local.get $weight)))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $x) (local.get $n)))
        ;; Four pixels, each one's bytes reversed: big-endian to the machine's.
        (local.set $v
          (i8x16.shuffle 3 2 1 0 7 6 5 4 11 10 9 8 15 14 13 12
            (v128.load align=1
              (i32.add (local.get $src) (i32.shl (local.get $x) (i32.const 2))))
            (local.get $v)))
        (local.set $inside
          (v128.and
            (f32x4.gt (local.get $v) (local.get $lt))
            (f32x4.lt (local.get $v) (local.get $hf))))
        (local.set $at
          (i32.add (local.get $sums) (i32.shl (local.get $x) (i32.const 3))))
        ;; Pixels x and x + 1, then x + 2 and x + 3 (their lanes moved down).
        (v128.store align=8 (local.get $at)
          (f64x2.add (v128.load align=8 (local.get $at))
            (v128.and
              (f64x2.mul
                (f64x2.sub (f64x2.promote_low_f32x4 (local.get $v)) (local.get $c))
                (local.get $w))
              (i64x2.extend_low_i32x4_s (local.get $inside)))))
        (v128.store offset=16 align=8 (local.get $at)
          (f64x2.add (v128.load offset=16 align=8 (local.get $at))
            (v128.and
              (f64x2.mul
                (f64x2.sub
                  (f64x2.promote_low_f32x4
                    (i8x16.shuffle 8 9 10 11 12 13 14 15 0 1 2 3 4 5 6 7
                      (local.get $v) (local.get $v)))
                  (local.get $c))
                (local.get $w))
              (i64x2.extend_high_i32x4_s (local.get $inside)))))
        ;; The rare group with a pixel outside: those pixels one by one.
        (local.set $bits (i32x4.bitmask (local.get $inside)))
        (if (i32.ne (local.get $bits) (i32.const 15))
          (then
            (if (i32.eqz (i32.and (local.get $bits) (i32.const 1)))
              (then
                (local.set $count
                  (call $other (f32x4.extract_lane 0 (local.get $v)) (local.get $x)
                    (local.get $lowFrom) (local.get $highTo) (local.get $weight)
                    (local.get $others) (local.get $whites) (local.get $columnMap)
                    (local.get $kept) (local.get $keptSpan) (local.get $f)
                    (local.get $count) (local.get $n)))))
            (if (i32.eqz (i32.and (local.get $bits) (i32.const 2)))
              (then
                (local.set $count
                  (call $other (f32x4.extract_lane 1 (local.get $v))
                    (i32.add (local.get $x) (i32.const 1))
                    (local.get $lowFrom) (local.get $highTo) (local.get $weight)
                    (local.get $others) (local.get $whites) (local.get $columnMap)
                    (local.get $kept) (local.get $keptSpan) (local.get $f)
                    (local.get $count) (local.get $n)))))
            (if (i32.eqz (i32.and (local.get $bits) (i32.const 4)))
              (then
                (local.set $count
                  (call $other (f32x4.extract_lane 2 (local.get $v))
                    (i32.add (local.get $x) (i32.const 2))
                    (local.get $lowFrom) (local.get $highTo) (local.get $weight)
                    (local.get $others) (local.get $whites) (local.get $columnMap)
                    (local.get $kept) (local.get $keptSpan) (local.get $f)
                    (local.get $count) (local.get $n)))))
            (if (i32.eqz (i32.and (local.get $bits) (i32.const 8)))
              (then
                (local.set $count
                  (call $other (f32x4.extract_lane 3 (local.get $v))
                    (i32.add (local.get $x) (i32.const 3))
                    (local.get $lowFrom) (local.get $highTo) (local.get $weight)
                    (local.get $others) (local.get $whites) (local.get $columnMap)
                    (local.get $kept) (local.get $keptSpan) (local.get $f)
                    (local.get $count) (local.get $n)))))))
        (local.set $x (i32.add (local.get $x) (i32.const 4)))
        (br $next)))
    (local.get $count))

  ;; A pixel v of frame column x that is not between the windows (see
  ;; sort); the new length of the kept list.
  (func $other
    (param $v f32) (param $x i32) (param $lowFrom f32) (param $highTo f32)
    (param $weight f64) (param $others i32) (param $whites i32) (param $columnMap i32)
    (param $kept i32) (param $keptSpan i32) (param $f i32)
    (param $count i32) (param $n i32) (result i32)
    (local $entry i32) (local $j1 i32) (local $j2 i32) (local $f1 f64) (local $f2 f64)
    (local $tally f64)
    ;; Columns past the row are sorted too, but count nowhere.
    (local.set $tally
      (select (local.get $weight) (f64.const 0) (i32.lt_u (local.get $x) (local.get $n))))
    (local.set $entry (i32.add (local.get $columnMap) (i32.shl (local.get $x) (i32.const 5))))
    (local.set $j1 (i32.shl (i32.load (local.get $entry)) (i32.const 3)))
    (local.set $j2 (i32.shl (i32.load offset=4 (local.get $entry)) (i32.const 3)))
    (local.set $f1 (f64.mul (local.get $weight) (f64.load offset=8 (local.get $entry))))
    (local.set $f2 (f64.mul (local.get $weight) (f64.load offset=16 (local.get $entry))))
    (call $share (i32.add (local.get $others) (local.get $j1)) (local.get $f1))
    (call $share (i32.add (local.get $others) (local.get $j2)) (local.get $f2))
    (if (i32.and
          (f32.gt (local.get $v) (local.get $highTo))
          (f32.ne (local.get $v) (f32.const inf)))
      (then
        (call $share (i32.add (local.get $whites) (local.get $j1)) (local.get $f1))
        (call $share (i32.add (local.get $whites) (local.get $j2)) (local.get $f2))
        (global.set $whiteTally (f64.add (global.get $whiteTally) (local.get $tally)))
        (return (local.get $count))))
    (if (i32.and
          (f32.lt (local.get $v) (local.get $lowFrom))
          (f32.ne (local.get $v) (f32.const -inf)))
      (then
        (global.set $blackTally (f64.add (global.get $blackTally) (local.get $tally)))
        (return (local.get $count))))
    (if (i32.ge_u (local.get $x) (local.get $n))
      (then (return (local.get $count))))
    (local.set $entry (i32.add (local.get $kept) (i32.shl (local.get $count) (i32.const 2))))
    (i32.store (local.get $entry) (local.get $x))
    (local.set $entry (i32.add (local.get $entry) (local.get $keptSpan)))
    (f32.store (local.get $entry) (local.get $v))
    (i32.store (i32.add (local.get $entry) (local.get $keptSpan)) (local.get $f))
    (i32.add (local.get $count) (i32.const 1)))

  (func $share (param $at i32) (param $f f64)
    (f64.store (local.get $at) (f64.add (f64.load (local.get $at)) (local.get $f))))

  (func (export "columns")
    (param $sums i32) (param $others i32) (param $whites i32) (param $n i32)
    (param $spans i32) (param $m i32) (param $row i32) (param $plane i32) (param $rows f64)
    (local $j i32) (local $at i32) (local $out i32) (local $covered f64)
    (call $sum (local.get $sums) (local.get $spans) (local.get $m) (local.get $row))
    (block $done
      (loop $column
        (br_if $done (i32.ge_u (local.get $j) (local.get $m)))
        (local.set $at (i32.add (local.get $spans) (i32.shl (local.get $j) (i32.const 5))))
        (local.set $covered
          (f64.convert_i32_s
            (i32.sub (i32.load offset=4 (local.get $at)) (i32.load (local.get $at)))))
        (if (i32.ge_s (i32.load offset=8 (local.get $at)) (i32.const 0))
          (then
            (local.set $covered
              (f64.add (local.get $covered) (f64.load offset=16 (local.get $at))))))
        (if (i32.ge_s (i32.load offset=12 (local.get $at)) (i32.const 0))
          (then
            (local.set $covered
              (f64.add (local.get $covered) (f64.load offset=24 (local.get $at))))))
        (local.set $out
          (i32.add (i32.add (local.get $row) (local.get $plane))
            (i32.shl (local.get $j) (i32.const 2))))
        ;; Each float32 of the picture plus a float64, added in float64.
        (f32.store (local.get $out)
          (f32.demote_f64
            (f64.add (f64.promote_f32 (f32.load (local.get $out)))
              (f64.sub
                (f64.mul (local.get $rows) (local.get $covered))
                (f64.load (i32.add (local.get $others) (i32.shl (local.get $j) (i32.const 3))))))))
        (local.set $out (i32.add (local.get $out) (local.get $plane)))
        (f32.store (local.get $out)
          (f32.demote_f64
            (f64.add (f64.promote_f32 (f32.load (local.get $out)))
              (f64.load (i32.add (local.get $whites) (i32.shl (local.get $j) (i32.const 3)))))))
        (local.set $j (i32.add (local.get $j) (i32.const 1)))
        (br $column)))
    (memory.fill (local.get $sums) (i32.const 0)
      (i32.shl (i32.add (local.get $n) (i32.const 4)) (i32.const 3)))
    (memory.fill (local.get $others) (i32.const 0)
      (i32.shl (i32.add (local.get $m) (i32.const 1)) (i32.const 3)))
    (memory.fill (local.get $whites) (i32.const 0)
      (i32.shl (i32.add (local.get $m) (i32.const 1)) (i32.const 3))))

  ;; Per-frame-column values at $values summed per picture column and added
  ;; to the m float32 at $out.
  (func $sum (param $values i32) (param $spans i32) (param $m i32) (param $out i32)
    (local $j i32) (local $i i32) (local $to i32) (local $side i32) (local $at i32)
    (local $s f64)
    (block $done
      (loop $column
        (br_if $done (i32.ge_u (local.get $j) (local.get $m)))
        (local.set $at (i32.add (local.get $spans) (i32.shl (local.get $j) (i32.const 5))))
        (local.set $s (f64.const 0))
        (local.set $i (i32.load (local.get $at)))
        (local.set $to (i32.load offset=4 (local.get $at)))
        (block $whole
          (loop $pixel
            (br_if $whole (i32.ge_s (local.get $i) (local.get $to)))
            (local.set $s
              (f64.add (local.get $s)
                (f64.load (i32.add (local.get $values) (i32.shl (local.get $i) (i32.const 3))))))
            (local.set $i (i32.add (local.get $i) (i32.const 1)))
            (br $pixel)))
        (local.set $side (i32.load offset=8 (local.get $at)))
        (if (i32.ge_s (local.get $side) (i32.const 0))
          (then
            (local.set $s
              (f64.add (local.get $s)
                (f64.mul (f64.load offset=16 (local.get $at))
                  (f64.load (i32.add (local.get $values) (i32.shl (local.get $side) (i32.const 3)))))))))
        (local.set $side (i32.load offset=12 (local.get $at)))
        (if (i32.ge_s (local.get $side) (i32.const 0))
          (then
            (local.set $s
              (f64.add (local.get $s)
                (f64.mul (f64.load offset=24 (local.get $at))
                  (f64.load (i32.add (local.get $values) (i32.shl (local.get $side) (i32.const 3)))))))))
        (local.set $at (i32.add (local.get $out) (i32.shl (local.get $j) (i32.const 2))))
        (f32.store (local.get $at)
          (f32.demote_f64 (f64.add (f64.promote_f32 (f32.load (local.get $at))) (local.get $s))))
        (local.set $j (i32.add (local.get $j) (i32.const 1)))
        (br $column))))

  ;; keys and lows take the top 16 and next 8 bits of each value's sort key:
  ;; of the big-endian float32 whose bytes, read little-endian, are b, the
  ;; top 24 bits with the sign flipped for positives and every one flipped for
  ;; negatives, which order as the values do. Written out in each loop, as the
  ;; baseline compiler that runs a process's first frame would not inline it.
  ;;
  ;; keys(src, n, counts): for the n big-endian float32 from src, counts[k] += 1
  ;; (uint32 at counts + 4k) for the top 16 bits k of each one's sort key.
  (func (export "keys") (param $src i32) (param $n i32) (param $counts i32)
    (local $end i32) (local $at i32) (local $b i32) (local $top24 i32) (local $key i32)
    (local.set $end (i32.add (local.get $src) (i32.shl (local.get $n) (i32.const 2))))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $src) (local.get $end)))
        (local.set $key
          (i32.xor
            (local.tee $top24
              (i32.or
                (i32.and (i32.shl (local.tee $b (i32.load align=1 (local.get $src))) (i32.const 16)) (i32.const 0xff0000))
                (i32.or
                  (i32.and (local.get $b) (i32.const 0xff00))
                  (i32.and (i32.shr_u (local.get $b) (i32.const 16)) (i32.const 0xff)))))
            (select (i32.const 0xffffff) (i32.const 0x800000)
              (i32.and (local.get $top24) (i32.const 0x800000)))))
        (local.set $at
          (i32.add (local.get $counts)
            (i32.shl (i32.shr_u (local.get $key) (i32.const 8)) (i32.const 2))))
        (i32.store (local.get $at) (i32.add (i32.load (local.get $at)) (i32.const 1)))
        (local.set $src (i32.add (local.get $src) (i32.const 4)))
        (br $next))))

;; cumulate(counts, n): the n uint32 at counts become their running
  ;; totals (each the sum of those up to and including it).
  (func (export "cumulate") (param $counts i32) (param $n i32)
    (local $end i32) (local $total i32)
    (local.set $end (i32.add (local.get $counts) (i32.shl (local.get $n) (i32.const 2))))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $counts) (local.get $end)))
        (local.set $total (i32.add (local.get $total) (i32.load (local.get $counts))))
        (i32.store (local.get $counts) (local.get $total))
        (local.set $counts (i32.add (local.get $counts) (i32.const 4)))
        (br $next))))

    ;; lows(src, n, b0, b1, b2, b3, counts): like keys, for the values whose top
  ;; 16 key bits are b_s (distinct, or -1 for none): counts[256 s + k] += 1 for
  ;; the next 8 bits k.
  (func (export "lows")
    (param $src i32) (param $n i32)
    (param $b0 i32) (param $b1 i32) (param $b2 i32) (param $b3 i32)
    (param $counts i32)
    (local $end i32) (local $key i32) (local $top i32) (local $slot i32) (local $at i32)
    (local $b i32) (local $top24 i32)
    (local.set $end (i32.add (local.get $src) (i32.shl (local.get $n) (i32.const 2))))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $src) (local.get $end)))
        (local.set $key
          (i32.xor
            (local.tee $top24
              (i32.or
                (i32.and (i32.shl (local.tee $b (i32.load align=1 (local.get $src))) (i32.const 16)) (i32.const 0xff0000))
                (i32.or
                  (i32.and (local.get $b) (i32.const 0xff00))
                  (i32.and (i32.shr_u (local.get $b) (i32.const 16)) (i32.const 0xff)))))
            (select (i32.const 0xffffff) (i32.const 0x800000)
              (i32.and (local.get $top24) (i32.const 0x800000)))))
        (local.set $top (i32.shr_u (local.get $key) (i32.const 8)))
        (local.set $slot
          (select (i32.const 0)
            (select (i32.const 1)
              (select (i32.const 2)
                (select (i32.const 3) (i32.const -1) (i32.eq (local.get $top) (local.get $b3)))
                (i32.eq (local.get $top) (local.get $b2)))
              (i32.eq (local.get $top) (local.get $b1)))
            (i32.eq (local.get $top) (local.get $b0))))
        (if (i32.ge_s (local.get $slot) (i32.const 0))
          (then
            (local.set $at
              (i32.add (local.get $counts)
                (i32.shl
                  (i32.or (i32.shl (local.get $slot) (i32.const 8))
                    (i32.and (local.get $key) (i32.const 0xff)))
                  (i32.const 2))))
            (i32.store (local.get $at) (i32.add (i32.load (local.get $at)) (i32.const 1)))))
        (local.set $src (i32.add (local.get $src) (i32.const 4)))
        (br $next))))

  ;; paint(sums, counts, tops, blank, down, across, m, rows, scale, shift, out)
  ;;   the picture's grey levels: for picture pixel i = m y + x, of weight
  ;;   down[y] across[x] less blank[i] (float64 all three; blank 0: none),
  ;;   out[i] = floor(256 (scale (sums[i] + counts[i] shift) + tops[i]) /
  ;;   weight) within 0 to 255; a pixel of no weight keeps its byte.
  (func (export "paint")
    (param $sums i32) (param $counts i32) (param $tops i32) (param $blank i32)
    (param $down i32) (param $across i32) (param $m i32) (param $rows i32)
    (param $scale f64) (param $shift f64) (param $out i32)
    (local $y i32) (local $x i32) (local $i i32) (local $wy f64) (local $weight f64)
    (local $shade f64)
    (block $rowsDone
      (loop $row
        (br_if $rowsDone (i32.ge_u (local.get $y) (local.get $rows)))
        (local.set $wy (f64.load (i32.add (local.get $down) (i32.shl (local.get $y) (i32.const 3)))))
        (local.set $x (i32.const 0))
        (block $columnsDone
          (loop $column
            (br_if $columnsDone (i32.ge_u (local.get $x) (local.get $m)))
            (local.set $weight
              (f64.mul (local.get $wy)
                (f64.load (i32.add (local.get $across) (i32.shl (local.get $x) (i32.const 3))))))
            (if (local.get $blank)
              (then
                (local.set $weight
                  (f64.sub (local.get $weight)
                    (f64.load (i32.add (local.get $blank) (i32.shl (local.get $i) (i32.const 3))))))))
            (if (f64.gt (local.get $weight) (f64.const 1e-9))
              (then
                (local.set $shade
                  (f64.add
                    (f64.mul (local.get $scale)
                      (f64.add
                        (f64.promote_f32
                          (f32.load (i32.add (local.get $sums) (i32.shl (local.get $i) (i32.const 2)))))
                        (f64.mul
                          (f64.promote_f32
                            (f32.load (i32.add (local.get $counts) (i32.shl (local.get $i) (i32.const 2)))))
                          (local.get $shift))))
                    (f64.promote_f32
                      (f32.load (i32.add (local.get $tops) (i32.shl (local.get $i) (i32.const 2)))))))
                (i32.store8 (i32.add (local.get $out) (local.get $i))
                  (i32.trunc_sat_f64_s
                    (f64.min (f64.const 255)
                      (f64.max (f64.const 0)
                        (f64.floor
                          (f64.mul (f64.div (local.get $shade) (local.get $weight))
                            (f64.const 256)))))))))
            (local.set $i (i32.add (local.get $i) (i32.const 1)))
            (local.set $x (i32.add (local.get $x) (i32.const 1)))
            (br $column)))
        (local.set $y (i32.add (local.get $y) (i32.const 1)))
        (br $row))))

  ;; The kept pixels, once the frame is read (one-pass.ts `finish`), in
  ;; WebAssembly because a process's first frame would otherwise run these
  ;; loops interpreted, boxing every float it computes.
  ;;
  ;; partition(values, n, lowTo, out) -> lows
  ;;   the finite float32 of values[0, n): those <= lowTo to out from the
  ;;   start, in order (their number returned), the others to out from
  ;;   4n down; the non-finite ones and the NaNs among them are counted in
  ;;   the globals below.
  (global $nonFinite (mut i32) (i32.const 0))
  (global $nans (mut i32) (i32.const 0))
  (func (export "nonFinite") (result i32) (global.get $nonFinite))
  (func (export "nans") (result i32) (global.get $nans))
  (func (export "partition")
    (param $values i32) (param $n i32) (param $lowTo f32) (param $out i32) (result i32)
    (local $end i32) (local $v f32) (local $lows i32) (local $high i32)
    (local $nonFinite i32) (local $nans i32)
    (local.set $end (i32.add (local.get $values) (i32.shl (local.get $n) (i32.const 2))))
    (local.set $high (i32.add (local.get $out) (i32.shl (local.get $n) (i32.const 2))))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $values) (local.get $end)))
        (local.set $v (f32.load (local.get $values)))
        ;; v - v is 0 for every finite v, NaN for NaN and the infinities.
        (if (f32.ne (f32.sub (local.get $v) (local.get $v)) (f32.const 0))
          (then
            (local.set $nonFinite (i32.add (local.get $nonFinite) (i32.const 1)))
            (local.set $nans
              (i32.add (local.get $nans) (f32.ne (local.get $v) (local.get $v)))))
          (else
            (if (f32.le (local.get $v) (local.get $lowTo))
              (then
                (f32.store
                  (i32.add (local.get $out) (i32.shl (local.get $lows) (i32.const 2)))
                  (local.get $v))
                (local.set $lows (i32.add (local.get $lows) (i32.const 1))))
              (else
                (local.set $high (i32.sub (local.get $high) (i32.const 4)))
                (f32.store (local.get $high) (local.get $v))))))
        (local.set $values (i32.add (local.get $values) (i32.const 4)))
        (br $next)))
    (global.set $nonFinite (local.get $nonFinite))
    (global.set $nans (local.get $nans))
    (local.get $lows))

  ;; select(values, n, k) -> the k-th smallest of the n finite float32 at
  ;;   values, which are reordered so that none after position k is smaller
  ;;   (quickselect, Hoare's partition around a median of three).
  (func (export "select") (param $values i32) (param $n i32) (param $k i32) (result f32)
    (local $lo i32) (local $hi i32) (local $i i32) (local $j i32)
    (local $a f32) (local $b f32) (local $c f32) (local $pivot f32) (local $t f32)
    (local.set $hi (i32.sub (local.get $n) (i32.const 1)))
    (block $found
      (loop $narrow
        (br_if $found (i32.le_s (local.get $hi) (local.get $lo)))
        (local.set $a (f32.load (i32.add (local.get $values) (i32.shl (local.get $lo) (i32.const 2)))))
        (local.set $b
          (f32.load (i32.add (local.get $values)
            (i32.shl (i32.shr_u (i32.add (local.get $lo) (local.get $hi)) (i32.const 1)) (i32.const 2)))))
        (local.set $c (f32.load (i32.add (local.get $values) (i32.shl (local.get $hi) (i32.const 2)))))
        (local.set $pivot
          (f32.max (f32.min (local.get $a) (local.get $b))
            (f32.min (f32.max (local.get $a) (local.get $b)) (local.get $c))))
        (local.set $i (local.get $lo))
        (local.set $j (local.get $hi))
        (block $split
          (loop $step
            (br_if $split (i32.gt_s (local.get $i) (local.get $j)))
            (block $stop
              (loop $up
                (br_if $stop
                  (i32.eqz (f32.lt
                    (f32.load (i32.add (local.get $values) (i32.shl (local.get $i) (i32.const 2))))
                    (local.get $pivot))))
                (local.set $i (i32.add (local.get $i) (i32.const 1)))
                (br $up)))
            (block $stop
              (loop $down
                (br_if $stop
                  (i32.eqz (f32.gt
                    (f32.load (i32.add (local.get $values) (i32.shl (local.get $j) (i32.const 2))))
                    (local.get $pivot))))
                (local.set $j (i32.sub (local.get $j) (i32.const 1)))
                (br $down)))
            (if (i32.le_s (local.get $i) (local.get $j))
              (then
                (local.set $t
                  (f32.load (i32.add (local.get $values) (i32.shl (local.get $i) (i32.const 2)))))
                (f32.store (i32.add (local.get $values) (i32.shl (local.get $i) (i32.const 2)))
                  (f32.load (i32.add (local.get $values) (i32.shl (local.get $j) (i32.const 2)))))
                (f32.store (i32.add (local.get $values) (i32.shl (local.get $j) (i32.const 2)))
                  (local.get $t))
                (local.set $i (i32.add (local.get $i) (i32.const 1)))
                (local.set $j (i32.sub (local.get $j) (i32.const 1)))))
            (br $step)))
        (if (i32.le_s (local.get $k) (local.get $j))
          (then (local.set $hi (local.get $j)) (br $narrow)))
        (if (i32.ge_s (local.get $k) (local.get $i))
          (then (local.set $lo (local.get $i)) (br $narrow)))))
    (f32.load (i32.add (local.get $values) (i32.shl (local.get $k) (i32.const 2)))))

  ;; minimum(values, n) -> the least of the n float32 at values (+inf: none).
  (func (export "minimum") (param $values i32) (param $n i32) (result f32)
    (local $end i32) (local $least f32)
    (local.set $least (f32.const inf))
    (local.set $end (i32.add (local.get $values) (i32.shl (local.get $n) (i32.const 2))))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $values) (local.get $end)))
        (local.set $least (f32.min (local.get $least) (f32.load (local.get $values))))
        (local.set $values (i32.add (local.get $values) (i32.const 4)))
        (br $next)))
    (local.get $least))

  ;; spread(values, xs, fs, n, rowMap, columnMap, tops, blank, m, low, scale)
  ;;   kept pixel k, of value values[k] (float32) at frame column xs[k] and
  ;;   frame row fs[k] from the top (int32), falls on the picture pixels
  ;;   m t + j of the (at most two) picture rows t in its record at rowMap +
  ;;   32 fs[k] and columns j in columnMap + 32 xs[k] (as sort's), by the
  ;;   product of their shares: its shade, (v - low) scale within 0 to 1,
  ;;   times that is added to the float32 at tops; a NaN adds the share to
  ;;   the float64 at blank instead (blank 0: none may be NaN).
  (func (export "spread")
    (param $values i32) (param $xs i32) (param $fs i32) (param $n i32)
    (param $rowMap i32) (param $columnMap i32) (param $tops i32) (param $blank i32)
    (param $m i32) (param $low f64) (param $scale f64)
    (local $k i32) (local $v f64) (local $shade f64) (local $row i32) (local $column i32)
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $k) (local.get $n)))
        (local.set $v
          (f64.promote_f32
            (f32.load (i32.add (local.get $values) (i32.shl (local.get $k) (i32.const 2))))))
        (local.set $shade
          (f64.min (f64.const 1)
            (f64.max (f64.const 0)
              (f64.mul (f64.sub (local.get $v) (local.get $low)) (local.get $scale)))))
        (local.set $row
          (i32.add (local.get $rowMap)
            (i32.shl (i32.load (i32.add (local.get $fs) (i32.shl (local.get $k) (i32.const 2))))
              (i32.const 5))))
        (local.set $column
          (i32.add (local.get $columnMap)
            (i32.shl (i32.load (i32.add (local.get $xs) (i32.shl (local.get $k) (i32.const 2))))
              (i32.const 5))))
        (if (f64.eq (local.get $v) (local.get $v))
          (then
            (call $shade (local.get $tops) (local.get $m) (local.get $row) (local.get $column)
              (local.get $shade)))
          (else
            (if (local.get $blank)
              (then
                (call $unweigh (local.get $blank) (local.get $m) (local.get $row)
                  (local.get $column))))))
        (local.set $k (i32.add (local.get $k) (i32.const 1)))
        (br $next))))

  ;; weighRows(rowMap, n, down)
  ;;   for each of the n frame rows' records at rowMap (as spread's), its
  ;;   shares added to the float64 at down of its picture rows, in order.
  (func (export "weighRows") (param $rowMap i32) (param $n i32) (param $down i32)
    (local $end i32)
    (local.set $end (i32.add (local.get $rowMap) (i32.shl (local.get $n) (i32.const 5))))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $rowMap) (local.get $end)))
        (call $share
          (i32.add (local.get $down) (i32.shl (i32.load (local.get $rowMap)) (i32.const 3)))
          (f64.load offset=8 (local.get $rowMap)))
        (call $share
          (i32.add (local.get $down) (i32.shl (i32.load offset=4 (local.get $rowMap)) (i32.const 3)))
          (f64.load offset=16 (local.get $rowMap)))
        (local.set $rowMap (i32.add (local.get $rowMap) (i32.const 32)))
        (br $next))))

  ;; The four (row, column) pairs of a kept pixel's records, in order: first
  ;; row with first then second column, then the second row. A record with
  ;; one entry repeats it with share 0, which adds nothing.
  (func $shade (param $tops i32) (param $m i32) (param $row i32) (param $column i32) (param $shade f64)
    (local $r i32) (local $at i32) (local $share f64)
    (loop $rows
      (local.set $at
        (i32.mul (i32.load (i32.add (local.get $row) (i32.shl (local.get $r) (i32.const 2))))
          (local.get $m)))
      (local.set $share
        (f64.load offset=8 (i32.add (local.get $row) (i32.shl (local.get $r) (i32.const 3)))))
      (call $addShade (local.get $tops)
        (i32.add (local.get $at) (i32.load (local.get $column)))
        (f64.mul (f64.mul (local.get $share) (f64.load offset=8 (local.get $column)))
          (local.get $shade)))
      (call $addShade (local.get $tops)
        (i32.add (local.get $at) (i32.load offset=4 (local.get $column)))
        (f64.mul (f64.mul (local.get $share) (f64.load offset=16 (local.get $column)))
          (local.get $shade)))
      (local.set $r (i32.add (local.get $r) (i32.const 1)))
      (br_if $rows (i32.lt_u (local.get $r) (i32.const 2)))))

  (func $addShade (param $tops i32) (param $i i32) (param $add f64)
    (local $at i32)
    (local.set $at (i32.add (local.get $tops) (i32.shl (local.get $i) (i32.const 2))))
    (f32.store (local.get $at)
      (f32.demote_f64 (f64.add (f64.promote_f32 (f32.load (local.get $at))) (local.get $add)))))

  (func $unweigh (param $blank i32) (param $m i32) (param $row i32) (param $column i32)
    (local $r i32) (local $at i32) (local $share f64)
    (loop $rows
      (local.set $at
        (i32.mul (i32.load (i32.add (local.get $row) (i32.shl (local.get $r) (i32.const 2))))
          (local.get $m)))
      (local.set $share
        (f64.load offset=8 (i32.add (local.get $row) (i32.shl (local.get $r) (i32.const 3)))))
      (call $share
        (i32.add (local.get $blank)
          (i32.shl (i32.add (local.get $at) (i32.load (local.get $column))) (i32.const 3)))
        (f64.mul (local.get $share) (f64.load offset=8 (local.get $column))))
      (call $share
        (i32.add (local.get $blank)
          (i32.shl (i32.add (local.get $at) (i32.load offset=4 (local.get $column))) (i32.const 3)))
        (f64.mul (local.get $share) (f64.load offset=16 (local.get $column))))
      (local.set $r (i32.add (local.get $r) (i32.const 1)))
      (br_if $rows (i32.lt_u (local.get $r) (i32.const 2)))))
)
