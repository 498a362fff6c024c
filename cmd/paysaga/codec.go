package main

import (
	"fmt"
	"net"

	"github.com/spf13/cobra"

	"paysaga/internal/app"
	"paysaga/payloadcodec"
)

func codecServerCmd() *cobra.Command {
	var (
		addr        string
		origins     []string
		generateKey string
	)
	cmd := &cobra.Command{
		Use:   "codec-server",
		Short: "Serve Temporal's remote codec protocol so that operators read encrypted payloads in the Web UI and the CLI",
		Long: `codec-server decrypts (and encrypts) Temporal payloads with PAYSAGA_TEMPORAL_PAYLOAD_KEYS for the
Temporal Web UI (its codec endpoint setting, TEMPORAL_CODEC_ENDPOINT, or start-dev's --ui-codec-endpoint)
and the CLI (temporal workflow show --codec-endpoint URL --codec-auth "Bearer TOKEN"). Every request needs
an operator's access token of this deployment (PAYSAGA_JWT_SECRET), the one payctl and the API accept.
--cors-origin lists the Web UI origins whose browsers may call it.

--generate-key ID prints a fresh key entry (ID:base64) for PAYSAGA_TEMPORAL_PAYLOAD_KEYS and exits.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if generateKey != "" {
				fmt.Fprintln(cmd.OutOrStdout(), payloadcodec.GenerateSpec(generateKey))
				return nil
			}
			ctx := cmd.Context()
			cfg, logger, err := loadProduction("api")
			if err != nil {
				return err
			}
			codec, err := app.PayloadCodec(cfg)
			if err != nil {
				return err
			}
			db, err := app.OpenDB(ctx, cfg, false)
			if err != nil {
				return err
			}
			defer db.Close()
			rdb := app.NewRedis(cfg)
			defer rdb.Close()
			authSvc, err := app.NewAuth(cfg, db, rdb, false)
			if err != nil {
				return err
			}
			h := payloadcodec.Handler(codec, payloadcodec.ServerOptions{
				Authorize:      app.OperatorOnly(authSvc),
				AllowedOrigins: origins,
				Logger:         logger,
			})
			ln, err := net.Listen("tcp", addr)
			if err != nil {
				return err
			}
			logger.Info("codec server listening", "addr", ln.Addr().String(), "key", codec.CurrentKeyID())
			return app.Serve(ctx, ln, h, logger)
		},
	}
	f := cmd.Flags()
	f.StringVar(&addr, "addr", ":8089", "address to listen on")
	f.StringSliceVar(&origins, "cors-origin", nil, "Web UI origin allowed to call the codec from a browser, e.g. https://temporal-ui.example.com (repeatable)")
	f.StringVar(&generateKey, "generate-key", "", "print a new key entry with this id for PAYSAGA_TEMPORAL_PAYLOAD_KEYS and exit")
	return cmd
}
