/** `fitsfleet ami list`: the images `ami bake` made, newest first. */
import { Command } from "commander";

import { packageVersion } from "../../../lib/paths.js";
import { runContext } from "../../run.js";
import { REGION_OPTION } from "../fleet/common.js";
import { imagesTable } from "./common.js";

export function listCommand(): Command {
  return new Command("list")
    .description(
      "list the baked worker images of this account and region, newest first: id, name, state, creation date, fitsfleet version, commit and bundle sha256",
    )
    .option(...REGION_OPTION)
    .action(async (flags: { region?: string }, command: Command) => {
      const { config, output } = await runContext(command);
      const region = (await import("../../../infra/aws.js")).awsRegion(
        flags.region,
      );
      const [{ listBakedImages }, { amiClients }] = await Promise.all([
        import("../../../ami/images.js"),
        import("./common.js"),
      ]);
      const clients = await amiClients(region, config.s3Endpoint);
      try {
        const images = await listBakedImages(clients.ec2);
        const version = packageVersion();
        output.result({ region, version, images }, (r) =>
          r.images.length === 0
            ? `no baked image in ${region}: bake one with \`fitsfleet ami bake\``
            : imagesTable(r.images, version),
        );
      } finally {
        clients.destroy();
      }
    });
}
