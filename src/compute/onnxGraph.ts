import onnxProto, { type onnx } from 'onnx-proto';

const proto = onnxProto.onnx;

/**
 * A small builder for ONNX graphs made in code: the compute kernels (MatMul, top-k, reductions) and the
 * tiny CLIP towers the tests load through the real loading code. Opset 13 keeps every op we use stable.
 */
export const OPSET = 13;

export type ElemType = 'float32' | 'float64' | 'float16' | 'int64' | 'int32' | 'uint8' | 'bool';
export type Dim = number | string;

const ELEM: Record<ElemType, onnx.TensorProto.DataType> = {
  float32: proto.TensorProto.DataType.FLOAT,
  float64: proto.TensorProto.DataType.DOUBLE,
  float16: proto.TensorProto.DataType.FLOAT16,
  int64: proto.TensorProto.DataType.INT64,
  int32: proto.TensorProto.DataType.INT32,
  uint8: proto.TensorProto.DataType.UINT8,
  bool: proto.TensorProto.DataType.BOOL,
};

export type AttrValue = number | number[] | string | Float32Array;

function valueInfo(name: string, type: ElemType, dims: readonly Dim[]): onnx.IValueInfoProto {
  return {
    name,
    type: {
      tensorType: {
        elemType: ELEM[type],
        shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) },
      },
    },
  };
}

function attribute(name: string, value: AttrValue): onnx.IAttributeProto {
  const A = proto.AttributeProto.AttributeType;
  if (typeof value === 'string') return { name, type: A.STRING, s: new TextEncoder().encode(value) };
  if (value instanceof Float32Array) return { name, type: A.FLOATS, floats: [...value] };
  if (Array.isArray(value)) return { name, type: A.INTS, ints: value };
  return Number.isInteger(value) ? { name, type: A.INT, i: value } : { name, type: A.FLOAT, f: value };
}

export class GraphBuilder {
  private readonly inputs: onnx.IValueInfoProto[] = [];
  private readonly outputs: onnx.IValueInfoProto[] = [];
  private readonly initializers: onnx.ITensorProto[] = [];
  private readonly nodes: onnx.INodeProto[] = [];
  private counter = 0;
  private readonly domains = new Set<string>();

  /** `opset` above OPSET only for graphs that need a newer op (e.g. ScatterND's reduction, opset 16). */
  constructor(
    private readonly name: string,
    private readonly opset = OPSET,
  ) {}

  input(name: string, type: ElemType, dims: readonly Dim[]): string {
    this.inputs.push(valueInfo(name, type, dims));
    return name;
  }

  output(name: string, type: ElemType, dims: readonly Dim[]): string {
    this.outputs.push(valueInfo(name, type, dims));
    return name;
  }

  /** A constant tensor stored in the model (weights, shapes, axes). */
  constant(
    data: Float32Array | BigInt64Array | Int32Array,
    dims: readonly number[],
    name = this.fresh('const'),
  ): string {
    const type = data instanceof Float32Array ? 'float32' : data instanceof BigInt64Array ? 'int64' : 'int32';
    this.initializers.push({
      name,
      dataType: ELEM[type],
      dims: [...dims],
      rawData: new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
    });
    return name;
  }

  ints(values: readonly number[], name?: string): string {
    return this.constant(
      BigInt64Array.from(values, (v) => BigInt(v)),
      [values.length],
      name,
    );
  }

  /**
   * Add a node; returns its output names (one fresh name per output unless given). `domain` names an
   * operator set other than ONNX's own, e.g. onnxruntime's `com.microsoft` contrib ops (version 1).
   */
  node(
    op: string,
    inputs: readonly string[],
    attrs: Record<string, AttrValue> = {},
    outputs?: readonly string[],
    domain?: string,
  ): string[] {
    const outs = outputs ? [...outputs] : [this.fresh(op.toLowerCase())];
    if (domain) this.domains.add(domain);
    this.nodes.push({
      ...(domain ? { domain } : {}),
      opType: op,
      input: [...inputs],
      output: outs,
      name: this.fresh(`${op}_node`),
      attribute: Object.entries(attrs).map(([k, v]) => attribute(k, v)),
    });
    return outs;
  }

  /** Shorthand for single-output nodes. */
  op(op: string, inputs: readonly string[], attrs: Record<string, AttrValue> = {}, output?: string): string {
    return this.node(op, inputs, attrs, output ? [output] : undefined)[0]!;
  }

  toBytes(): Uint8Array {
    const model: onnx.IModelProto = {
      // IR 7 is what opset 13 shipped with; IR 8 (ONNX 1.10) carries opsets up to 16.
      irVersion: this.opset > 13 ? 8 : 7,
      producerName: 'clipcurate',
      opsetImport: [
        { domain: '', version: this.opset },
        ...[...this.domains].map((domain) => ({ domain, version: 1 })),
      ],
      graph: {
        name: this.name,
        node: this.nodes,
        input: this.inputs,
        output: this.outputs,
        initializer: this.initializers,
      },
    };
    return proto.ModelProto.encode(proto.ModelProto.create(model)).finish();
  }

  private fresh(prefix: string): string {
    return `${prefix}_${this.counter++}`;
  }
}
