package api

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"paysaga"
)

// The auth endpoints are thin: the auth service decides, these translate HTTP to calls and
// errors to problems. Field rules here only catch what is missing; the service owns the rest
// (email shape, password policy), so the rules live in one place.

type signupRequest struct {
	Email    string `json:"email" binding:"required"`
	Password string `json:"password" binding:"required"`
	Name     string `json:"name" binding:"required"`
}

type loginRequest struct {
	Email    string `json:"email" binding:"required"`
	Password string `json:"password" binding:"required"`
}

type refreshRequest struct {
	RefreshToken string `json:"refresh_token" binding:"required"`
}

type grantRequest struct {
	Email string       `json:"email" binding:"required"`
	Role  paysaga.Role `json:"role" binding:"required,oneof=merchant operator"`
}

func (s *Server) signup(c *gin.Context) {
	var req signupRequest
	if err := BindJSON(c, &req); err != nil {
		Problem(c, err)
		return
	}
	u, err := s.auth.Signup(c.Request.Context(), req.Email, req.Password, req.Name)
	if err != nil {
		Problem(c, err)
		return
	}
	c.JSON(http.StatusCreated, u)
}

func (s *Server) login(c *gin.Context) {
	var req loginRequest
	if err := BindJSON(c, &req); err != nil {
		Problem(c, err)
		return
	}
	// ClientIP only believes X-Forwarded-For from Deps.TrustedProxies, so a client cannot dodge
	// the per-address rate limit by inventing a header.
	tp, err := s.auth.Login(c.Request.Context(), req.Email, req.Password, c.ClientIP())
	if err != nil {
		Problem(c, err)
		return
	}
	noStore(c)
	c.JSON(http.StatusOK, tp)
}

func (s *Server) refresh(c *gin.Context) {
	var req refreshRequest
	if err := BindJSON(c, &req); err != nil {
		Problem(c, err)
		return
	}
	tp, err := s.auth.Refresh(c.Request.Context(), req.RefreshToken)
	if err != nil {
		Problem(c, err)
		return
	}
	noStore(c)
	c.JSON(http.StatusOK, tp)
}

func (s *Server) logout(c *gin.Context) {
	var req refreshRequest
	if err := BindJSON(c, &req); err != nil {
		Problem(c, err)
		return
	}
	if err := s.auth.Logout(c.Request.Context(), req.RefreshToken); err != nil {
		Problem(c, err)
		return
	}
	c.Status(http.StatusNoContent)
}

func (s *Server) me(c *gin.Context) {
	u, err := s.users.UserByID(c.Request.Context(), UserFrom(c).UserID)
	if err != nil {
		Problem(c, err)
		return
	}
	c.JSON(http.StatusOK, u)
}

func (s *Server) grant(c *gin.Context) {
	var req grantRequest
	if err := BindJSON(c, &req); err != nil {
		Problem(c, err)
		return
	}
	if err := s.auth.Grant(c.Request.Context(), req.Email, req.Role); err != nil {
		Problem(c, err)
		return
	}
	Logger(c).InfoContext(c.Request.Context(), "role granted",
		"operator_id", UserFrom(c).UserID, "role", string(req.Role))
	c.Status(http.StatusNoContent)
}
