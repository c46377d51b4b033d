/**
 * 3-vectors and 3×3 rotation matrices, with ERFA's conventions: rotations are
 * passive (they rotate the frame, not the vector), and `rotX(a, m)` means
 * Rx(a)·m, so a chain of calls reads in the order the rotations apply.
 */

export type Vector = readonly [number, number, number];
export type Matrix = readonly [Vector, Vector, Vector];

export const IDENTITY: Matrix = [
  [1, 0, 0],
  [0, 1, 0],
  [0, 0, 1],
];

export function multiply(a: Matrix, b: Matrix): Matrix {
  const row = (r: Vector): Vector => [
    r[0] * b[0][0] + r[1] * b[1][0] + r[2] * b[2][0],
    r[0] * b[0][1] + r[1] * b[1][1] + r[2] * b[2][1],
    r[0] * b[0][2] + r[1] * b[1][2] + r[2] * b[2][2],
  ];
  return [row(a[0]), row(a[1]), row(a[2])];
}

/** Rx(angle)·m. */
export function rotX(angle: number, m: Matrix = IDENTITY): Matrix {
  const c = Math.cos(angle);
  const s = Math.sin(angle);
  return multiply(
    [
      [1, 0, 0],
      [0, c, s],
      [0, -s, c],
    ],
    m,
  );
}

/** Ry(angle)·m. */
export function rotY(angle: number, m: Matrix = IDENTITY): Matrix {
  const c = Math.cos(angle);
  const s = Math.sin(angle);
  return multiply(
    [
      [c, 0, -s],
      [0, 1, 0],
      [s, 0, c],
    ],
    m,
  );
}

/** Rz(angle)·m. */
export function rotZ(angle: number, m: Matrix = IDENTITY): Matrix {
  const c = Math.cos(angle);
  const s = Math.sin(angle);
  return multiply(
    [
      [c, s, 0],
      [-s, c, 0],
      [0, 0, 1],
    ],
    m,
  );
}

/** m·v */
export function apply(m: Matrix, v: Vector): Vector {
  return [dot(m[0], v), dot(m[1], v), dot(m[2], v)];
}

/** mᵀ·v: the inverse rotation. */
export function applyTransposed(m: Matrix, v: Vector): Vector {
  return [
    m[0][0] * v[0] + m[1][0] * v[1] + m[2][0] * v[2],
    m[0][1] * v[0] + m[1][1] * v[1] + m[2][1] * v[2],
    m[0][2] * v[0] + m[1][2] * v[1] + m[2][2] * v[2],
  ];
}

export function dot(a: Vector, b: Vector): number {
  return a[0] * b[0] + a[1] * b[1] + a[2] * b[2];
}

export function cross(a: Vector, b: Vector): Vector {
  return [
    a[1] * b[2] - a[2] * b[1],
    a[2] * b[0] - a[0] * b[2],
    a[0] * b[1] - a[1] * b[0],
  ];
}

export function subtract(a: Vector, b: Vector): Vector {
  return [a[0] - b[0], a[1] - b[1], a[2] - b[2]];
}

export function norm(v: Vector): number {
  return Math.sqrt(dot(v, v));
}

/** v scaled to unit length (a zero vector stays zero, as ERFA's eraPn leaves it). */
export function unit(v: Vector): Vector {
  const r = norm(v);
  return r === 0 ? [0, 0, 0] : [v[0] / r, v[1] / r, v[2] / r];
}

/** Unit vector towards longitude and latitude (radians). */
export function fromSpherical(lon: number, lat: number): Vector {
  const c = Math.cos(lat);
  return [c * Math.cos(lon), c * Math.sin(lon), Math.sin(lat)];
}

/** Longitude in [0, 2π) and latitude (radians) of a vector. */
export function toSpherical(v: Vector): [number, number] {
  const d2 = v[0] * v[0] + v[1] * v[1];
  const lon = d2 === 0 ? 0 : Math.atan2(v[1], v[0]);
  const lat = v[2] === 0 ? 0 : Math.atan2(v[2], Math.sqrt(d2));
  return [normalizeAngle(lon), lat];
}

const TWO_PI = 2 * Math.PI;

/** An angle brought into [0, 2π). */
export function normalizeAngle(a: number): number {
  const w = a % TWO_PI;
  return w < 0 ? w + TWO_PI : w;
}
