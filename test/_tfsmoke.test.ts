import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-cpu";
import { test, expect } from "vitest";
test("tf", async () => {
  tf.env().set("PROD", true);
  await tf.setBackend("cpu");
  await tf.ready();
  console.log(tf.getBackend(), tf.version_core, tf.env().get("IS_NODE"));
  const x = tf.tensor([1, 2, 3]);
  const g = tf.grad((a: tf.Tensor) => tf.sum(tf.mul(a, a)))(x);
  console.log(g.dataSync());
  expect(Array.from(g.dataSync())).toEqual([2, 4, 6]);
});
